import ipaddr from 'ipaddr.js';
import type { LockoutSettings } from '../config/schema.js';
import { SlidingWindow } from './sliding-window.js';

export type LockScope = 'ip' | 'username';

/** A client IP or a username that may not try AUTH until `until`. */
export interface Lock {
  scope: LockScope;
  key: string;
  until: number;
}

interface Entry {
  failures: SlidingWindow;
  /** Locks imposed so far; each doubles the next one. */
  locks: number;
  until: number;
}

/** Keys remembered per scope. An attacker spraying usernames or addresses costs bounded memory; idle keys go first. */
const MAX_KEYS = 10_000;

/** Failed AUTHs for one scope (client IPs, or usernames), and the locks they earned. */
class FailureLedger {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly scope: LockScope,
    private readonly threshold: number,
    private readonly settings: LockoutSettings,
  ) {}

  lockedUntil(key: string, now: number): number | undefined {
    const until = this.entries.get(key)?.until ?? 0;
    return until > now ? until : undefined;
  }

  /** Counts a failure; returns the lock it triggers, if it does. */
  fail(key: string, now: number): Lock | undefined {
    if (this.threshold === 0) return undefined;
    let entry = this.entries.get(key);
    // A key quiet for a whole window after its last lock starts over, so one bad day is not held against a device for ever.
    if (entry && this.isIdle(entry, now)) entry.locks = 0;
    this.entries.delete(key);
    entry ??= { failures: new SlidingWindow(this.threshold, this.settings.window), locks: 0, until: 0 };
    this.entries.set(key, entry);
    this.evict(now);
    entry.failures.add(now);
    if (entry.failures.hasRoom(now)) return undefined;
    entry.failures.forget();
    const duration = Math.min(this.settings.duration * 2 ** entry.locks, this.settings.max_duration);
    entry.locks++;
    entry.until = now + duration;
    return { scope: this.scope, key, until: entry.until };
  }

  /** Forgets the failures, not the locks: a success does not shorten what an attacker earned. */
  succeed(key: string): void {
    this.entries.get(key)?.failures.forget();
  }

  private isIdle(entry: Entry, now: number): boolean {
    return entry.until + this.settings.window <= now && entry.failures.count(now) === 0;
  }

  private evict(now: number): void {
    if (this.entries.size <= MAX_KEYS) return;
    for (const [key, entry] of this.entries) {
      if (this.isIdle(entry, now)) this.entries.delete(key);
    }
    // Still full of live keys: drop the least recently failed (Map order is insertion order, refreshed on every failure).
    for (const key of this.entries.keys()) {
      if (this.entries.size <= MAX_KEYS) break;
      this.entries.delete(key);
    }
  }
}

/**
 * Brute-force lockout, per client IP and per username (from any IP). Past
 * `ip_failures` / `username_failures` failed AUTHs within `window`, AUTH is
 * refused without checking the password for `duration`, doubling with each
 * further lock up to `max_duration`. The defaults (5 and 10 in 15 minutes)
 * leave room for a device that tries all its mechanisms with one mistyped
 * password, several times over.
 */
export class Lockout {
  private readonly ips: FailureLedger;
  private readonly usernames: FailureLedger;

  constructor(settings: LockoutSettings) {
    this.ips = new FailureLedger('ip', settings.ip_failures, settings);
    this.usernames = new FailureLedger('username', settings.username_failures, settings);
  }

  /** The lock that stops this attempt, if any. */
  check(clientIp: string, username: string, now: number): Lock | undefined {
    const ip = ipKey(clientIp);
    const user = username.toLowerCase();
    const ipUntil = this.ips.lockedUntil(ip, now);
    if (ipUntil) return { scope: 'ip', key: ip, until: ipUntil };
    const userUntil = this.usernames.lockedUntil(user, now);
    if (userUntil) return { scope: 'username', key: user, until: userUntil };
    return undefined;
  }

  /** Counts a failed AUTH against both the IP and the username; returns the locks it triggered. */
  fail(clientIp: string, username: string, now: number): Lock[] {
    return [this.ips.fail(ipKey(clientIp), now), this.usernames.fail(username.toLowerCase(), now)].filter((lock) => lock !== undefined);
  }

  succeed(clientIp: string): void {
    this.ips.succeed(ipKey(clientIp));
  }
}

/** ::ffff:192.168.1.5 and 192.168.1.5 are one client. */
function ipKey(clientIp: string): string {
  return ipaddr.isValid(clientIp) ? ipaddr.process(clientIp).toString() : clientIp;
}
