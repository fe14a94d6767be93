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

export type AuthVerdict = { ok: true; device: DevicePolicy } | { ok: false; reason: AuthRefusal; device?: DevicePolicy; lock?: Lock };

/** The connection an AUTH arrived on. */
export interface AuthContext {
  clientIp: string;
  secure: boolean;
  /** Negotiated TLS version ("TLSv1.2"), if secure. */
  tls?: string;
}

/**
 * Decides an AUTH: lockout first (a locked IP or username gets no password
 * check at all), then cleartext, the device, its freeze, its credential, and
 * where and how it may log in. Every failure after the lockout check counts
 * towards a lockout, except those that checked nothing (cleartext, frozen).
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
    const lock = this.lockout.check(clientIp, attempt.username, Date.now());
    if (lock) return { ok: false, reason: 'locked-out', device, lock };
    if (!context.secure && !device?.allowCleartextAuth) return { ok: false, reason: 'cleartext-not-allowed', device };
    if (!device) return this.failed('unknown-user', attempt, clientIp);
    if (this.freezes.isFrozen(device.name)) return { ok: false, reason: 'device-frozen', device };
    // The password is checked before where and how, so the log can tell a leaked password used from elsewhere.
    if (!(await device.verify(attempt))) return this.failed('bad-password', attempt, clientIp, device);
    if (!device.mechanisms.has(attempt.mechanism)) return this.failed('mechanism-not-allowed', attempt, clientIp, device);
    if (!device.networks.contains(clientIp)) return this.failed('network-not-allowed', attempt, clientIp, device);
    if (!device.acceptsTls(context.tls)) return this.failed('tls-too-old', attempt, clientIp, device);
    this.lockout.succeed(clientIp);
    return { ok: true, device };
  }

  private failed(reason: AuthRefusal, attempt: AuthAttempt, clientIp: string, device?: DevicePolicy): AuthVerdict {
    for (const lock of this.lockout.fail(clientIp, attempt.username, Date.now())) {
      this.logger.warn(
        { scope: lock.scope, client_ip: clientIp, sasl_username: attempt.username, until: new Date(lock.until).toISOString() },
        lock.scope === 'ip' ? 'client locked out' : 'username locked out',
      );
    }
    return { ok: false, reason, device };
  }
}
