import { LAN_NETWORKS, type Config, type Device, type DeviceMechanism } from '../config/schema.js';
import { AddressRules } from './addresses.js';
import { secretsEqual, verifyCramMd5 } from './credentials.js';
import { NetworkList } from './networks.js';

/** What a device proved about itself in one AUTH exchange, as the inbound stage received it. */
export type AuthAttempt =
  | { mechanism: 'PLAIN' | 'LOGIN'; username: string; password: string }
  | { mechanism: 'CRAM-MD5'; username: string; challenge: string; response: string };

/** Why an AUTH failed. The device always hears the same 535; the log hears this. */
export type AuthRefusal = 'unknown-user' | 'bad-password' | 'mechanism-not-allowed' | 'network-not-allowed' | 'no-auth-device';

export type AuthVerdict = { ok: true; device: DevicePolicy } | { ok: false; reason: AuthRefusal; device?: DevicePolicy };

/** One device's rules, compiled once from its config entry. */
export class DevicePolicy {
  readonly username: string;
  readonly mechanisms: ReadonlySet<DeviceMechanism>;
  readonly networks: NetworkList;
  readonly senders: AddressRules;
  readonly recipients: AddressRules;

  constructor(
    readonly name: string,
    private readonly entry: Device,
  ) {
    this.username = entry.username ?? name;
    this.mechanisms = new Set(entry.mechanisms);
    this.networks = new NetworkList(entry.networks ?? LAN_NETWORKS);
    this.senders = new AddressRules(entry.senders);
    this.recipients = new AddressRules(entry.recipients);
  }

  get upstream(): string {
    return this.entry.upstream;
  }

  get requiresAuth(): boolean {
    return this.entry.auth === 'required';
  }

  verify(attempt: AuthAttempt): boolean {
    const password = this.entry.password;
    if (password === undefined) return false;
    return attempt.mechanism === 'CRAM-MD5'
      ? verifyCramMd5(password, attempt.challenge, attempt.response)
      : secretsEqual(password, attempt.password);
  }
}

/** All devices, found by SASL username or, for devices without AUTH, by client address. */
export class DeviceDirectory {
  private readonly byUsername = new Map<string, DevicePolicy>();
  private readonly withoutAuth: DevicePolicy[] = [];

  constructor(devices: Config['devices']) {
    for (const [name, entry] of Object.entries(devices)) {
      const device = new DevicePolicy(name, entry);
      if (device.requiresAuth) this.byUsername.set(device.username.toLowerCase(), device);
      else this.withoutAuth.push(device);
    }
  }

  get all(): DevicePolicy[] {
    return [...this.byUsername.values(), ...this.withoutAuth];
  }

  /** Every mechanism some device may use: what EHLO advertises. */
  get mechanisms(): DeviceMechanism[] {
    const union = new Set<DeviceMechanism>();
    for (const device of this.byUsername.values()) device.mechanisms.forEach((m) => union.add(m));
    return [...union];
  }

  authenticate(attempt: AuthAttempt, clientIp: string): AuthVerdict {
    const device = this.byUsername.get(attempt.username.toLowerCase());
    if (!device) return { ok: false, reason: 'unknown-user' };
    if (!device.verify(attempt)) return { ok: false, reason: 'bad-password', device };
    if (!device.mechanisms.has(attempt.mechanism)) return { ok: false, reason: 'mechanism-not-allowed', device };
    if (!device.networks.contains(clientIp)) return { ok: false, reason: 'network-not-allowed', device };
    return { ok: true, device };
  }

  /** The device that sends without AUTH from this address, if any. */
  identifyByAddress(clientIp: string): DevicePolicy | undefined {
    return this.withoutAuth.find((device) => device.networks.contains(clientIp));
  }
}
