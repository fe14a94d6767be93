import type { Logger } from '../observe/logger.js';
import type { AuthAttempt, DeviceDirectory, DevicePolicy } from './devices.js';
import type { FreezeStore } from './freeze-store.js';
import type { Lock, Lockout } from './lockout.js';

/**
 * Why an AUTH failed. The device hears 535 for most (the same text every
 * time, so a right password from the wrong place teaches an attacker
 * nothing), 454 while locked out, 538 in cleartext; the log hears this.
 */
export type AuthRefusal =
  | 'locked-out'
  | 'cleartext-not-allowed'
  | 'unknown-user'
  | 'device-frozen'
  | 'bad-password'
  | 'mechanism-not-allowed'
  | 'network-not-allowed'
  | 'tls-too-old';

export type AuthVerdict =
  | { ok: true; device: DevicePolicy }
  /** `outsideNetworks`: the username's device may not log in from this client, so the failure counted against the client only. */
  | { ok: false; reason: AuthRefusal; device?: DevicePolicy; lock?: Lock; outsideNetworks?: boolean };

/** The connection an AUTH arrived on. */
export interface AuthContext {
  clientIp: string;
  secure: boolean;
  /** Negotiated TLS version ("TLSv1.2"), if secure. */
  tls?: string;
}

/**
 * Decides an AUTH: lockout first (a locked client or username gets no
 * password check at all), then cleartext, the device, its freeze, its
 * credential, and where and how it may log in. Every failure after the
 * lockout check counts towards a lockout, except those that checked nothing
 * (cleartext, frozen). An unknown username costs the same check as a known
 * one. Failures from outside a device's `networks` could never succeed, so
 * they count against the client only: an attacker elsewhere cannot lock the
 * device out at home.
 */
export class Authenticator {
  constructor(
    private readonly devices: DeviceDirectory,
    private readonly lockout: Lockout,
    private readonly freezes: FreezeStore,
    private readonly logger: Logger,
  ) {}

  async authenticate(attempt: AuthAttempt, context: AuthContext): Promise<AuthVerdict> {
    const { clientIp } = context;
    const device = this.devices.withUsername(attempt.username);
    const outsideNetworks = device !== undefined && !device.networks.contains(clientIp);
    const admitted = await this.lockout.admit(clientIp, outsideNetworks ? undefined : attempt.username);
    if ('scope' in admitted) return { ok: false, reason: 'locked-out', device, lock: admitted };
    try {
      const refusal = await this.refusal(attempt, context, device);
      if (refusal === 'accepted') {
        admitted.succeeded();
        return { ok: true, device: device! };
      }
      if (refusal === 'cleartext-not-allowed' || refusal === 'device-frozen') return { ok: false, reason: refusal, device };
      this.logLocks(admitted.failed(), attempt, clientIp);
      return { ok: false, reason: refusal, device, ...(outsideNetworks ? { outsideNetworks } : {}) };
    } finally {
      admitted.withdrawn();
    }
  }

  /** Why the attempt fails, or 'accepted' (then `device` is set). */
  private async refusal(attempt: AuthAttempt, context: AuthContext, device: DevicePolicy | undefined): Promise<AuthRefusal | 'accepted'> {
    if (!context.secure && !device?.allowCleartextAuth) return 'cleartext-not-allowed';
    if (!device) {
      await this.devices.verifyUnknown(attempt);
      return 'unknown-user';
    }
    if (this.freezes.isFrozen(device.name)) return 'device-frozen';
    // The password is checked before where and how, so the log can tell a leaked password used from elsewhere.
    if (!(await device.verify(attempt))) return 'bad-password';
    if (!device.mechanisms.has(attempt.mechanism)) return 'mechanism-not-allowed';
    if (!device.networks.contains(context.clientIp)) return 'network-not-allowed';
    if (!device.acceptsTls(context.tls)) return 'tls-too-old';
    return 'accepted';
  }

  private logLocks(locks: Lock[], attempt: AuthAttempt, clientIp: string): void {
    for (const lock of locks) {
      this.logger.warn(
        {
          scope: lock.scope,
          key: lock.key,
          client_ip: clientIp,
          sasl_username: attempt.username,
          until: new Date(lock.until).toISOString(),
        },
        lock.scope === 'ip' ? 'client locked out' : 'username locked out',
      );
    }
  }
}
