import {
  LAN_NETWORKS,
  TLS_VERSIONS,
  type Config,
  type Device,
  type DeviceMechanism,
  type Rate,
  type TlsVersion,
} from '../config/schema.js';
import { AddressRules } from './addresses.js';
import { credentialFor, secretsEqual, type Credential } from '../auth/credentials.js';
import { decoyCredential } from '../auth/decoy-credential.js';
import { digestMd5Rspauth, verifyDigestMd5, type DigestMd5Response } from '../auth/digest-md5-math.js';
import { NetworkList } from './networks.js';

/** What a device proved about itself in one AUTH exchange, as the inbound stage received it. */
export type AuthAttempt =
  | { mechanism: 'PLAIN' | 'LOGIN'; username: string; password: string }
  | { mechanism: 'CRAM-MD5'; username: string; challenge: string; response: string }
  | { mechanism: 'DIGEST-MD5'; username: string; digest: DigestMd5Response };

/** A freeze threshold is this many times the device's first messages budget, over the same window. */
const DEFAULT_FREEZE_FACTOR = 3;

/** One device's rules, compiled once from its config entry. */
export class DevicePolicy {
  readonly username: string;
  readonly mechanisms: ReadonlySet<DeviceMechanism>;
  readonly networks: NetworkList;
  readonly senders: AddressRules;
  readonly recipients: AddressRules;
  readonly credential?: Credential;
  readonly messageLimits: readonly Rate[];
  readonly recipientLimits: readonly Rate[];
  /** More message attempts than this within its window freeze the device; undefined: never. */
  readonly freezeAfter?: Rate;

  constructor(
    readonly name: string,
    private readonly entry: Device,
  ) {
    this.username = entry.username ?? name;
    this.mechanisms = new Set(entry.mechanisms);
    this.networks = new NetworkList(entry.networks ?? LAN_NETWORKS);
    this.senders = new AddressRules(entry.senders);
    this.recipients = new AddressRules(entry.recipients);
    this.credential = credentialFor(entry);
    this.messageLimits = entry.limits?.messages ?? [];
    this.recipientLimits = entry.limits?.recipients ?? [];
    this.freezeAfter = entry.freeze_after === false ? undefined : (entry.freeze_after ?? defaultFreeze(this.messageLimits[0]));
  }

  get upstream(): string {
    return this.entry.upstream;
  }

  get requiresAuth(): boolean {
    return this.entry.auth === 'required';
  }

  get allowCleartextAuth(): boolean {
    return this.entry.allow_cleartext_auth;
  }

  /** Whether a line "." after a bare LF ends this device's DATA, as its firmware expects. */
  get allowBareLfDot(): boolean {
    return this.entry.allow_bare_lf_dot;
  }

  get minTls(): TlsVersion | undefined {
    return this.entry.min_tls;
  }

  get maxRecipients(): number | undefined {
    return this.entry.max_recipients;
  }

  get maxSize(): number | undefined {
    return this.entry.max_size;
  }

  /** Whether a session with this negotiated TLS version (undefined: cleartext) meets the device's `min_tls`. */
  acceptsTls(version: string | undefined): boolean {
    if (!this.minTls) return true;
    return version !== undefined && TLS_VERSIONS.indexOf(version as TlsVersion) >= TLS_VERSIONS.indexOf(this.minTls);
  }

  verify(attempt: AuthAttempt): Promise<boolean> {
    return verifyWith(this.credential, attempt);
  }

  /** What the bridge proves back after a verified attempt: DIGEST-MD5's rspauth; nothing for the others. */
  serverProof(attempt: AuthAttempt): string | undefined {
    if (attempt.mechanism !== 'DIGEST-MD5') return undefined;
    const secret = this.credential?.digestMd5Ha1?.(attempt.username, attempt.digest.realm);
    return secret && digestMd5Rspauth(secret, attempt.digest);
  }
}

/** Whether the attempt proves knowledge of the credential's secret; false for a mechanism it cannot serve. */
async function verifyWith(credential: Credential | undefined, attempt: AuthAttempt): Promise<boolean> {
  switch (attempt.mechanism) {
    case 'PLAIN':
    case 'LOGIN':
      return (await credential?.verifyPassword?.(attempt.password)) ?? false;
    case 'CRAM-MD5': {
      const expected = credential?.cramMd5Digest?.(attempt.challenge);
      // Sloppy clients (shell one-liners piping `echo` into base64) send a trailing
      // newline or space, and old servers accepted it; so do we.
      return expected !== undefined && secretsEqual(expected, attempt.response.trim().toLowerCase());
    }
    case 'DIGEST-MD5': {
      const secret = credential?.digestMd5Ha1?.(attempt.username, attempt.digest.realm);
      return secret !== undefined && verifyDigestMd5(secret, attempt.digest);
    }
  }
}

function defaultFreeze(budget: Rate | undefined): Rate | undefined {
  if (!budget) return undefined;
  return { ...budget, count: budget.count * DEFAULT_FREEZE_FACTOR };
}

/** All devices, found by SASL username or, for devices without AUTH, by client address. */
export class DeviceDirectory {
  private readonly byUsername = new Map<string, DevicePolicy>();
  private readonly withoutAuth: DevicePolicy[] = [];
  private readonly decoy: Credential;

  constructor(devices: Config['devices']) {
    this.decoy = decoyCredential(Object.values(devices).flatMap((entry) => entry.secret ?? []));
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

  /** The device that logs in with this SASL username (case-insensitively). */
  withUsername(username: string): DevicePolicy | undefined {
    return this.byUsername.get(username.toLowerCase());
  }

  /** Does the work of checking a known username's attempt, and fails: timing must not tell which usernames exist. */
  async verifyUnknown(attempt: AuthAttempt): Promise<false> {
    await verifyWith(this.decoy, attempt);
    return false;
  }

  /** The device that sends without AUTH from this address, if any. */
  identifyByAddress(clientIp: string): DevicePolicy | undefined {
    return this.withoutAuth.find((device) => device.networks.contains(clientIp));
  }

  /** Whether some device may AUTH without TLS from this address: only then is AUTH offered before TLS. */
  allowsCleartextAuthFrom(clientIp: string): boolean {
    return [...this.byUsername.values()].some((device) => device.allowCleartextAuth && device.networks.contains(clientIp));
  }
}
