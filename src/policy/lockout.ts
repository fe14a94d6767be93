import type { LockoutSettings } from '../config/schema.js';
import { clientKey } from './client-key.js';
import { SlidingWindow } from './sliding-window.js';

export type LockScope = 'ip' | 'username';

/** A client (address, or IPv6 network) or a username that may not try AUTH until `until`. */
export interface Lock {
  scope: LockScope;
  key: string;
  until: number;
}

/** An AUTH let through the lockout, counted as in flight until it settles; only its first outcome counts. */
export interface AdmittedAttempt {
  /** The password was wrong (or right from the wrong place): counts a failure; returns the locks it triggered. */
  failed(): Lock[];
  /** The device logged in: forgets the client's failures. */
  succeeded(): void;
  /** Nothing was checked (cleartext, frozen): counts nothing. */
  withdrawn(): void;
}

interface Entry {
  failures: SlidingWindow;
  /** Locks imposed so far; each doubles the next one. */
  locks: number;
  until: number;
}

/** Keys remembered per scope. An attacker spraying usernames or addresses costs bounded memory; quiet keys go first. */
export const MAX_KEYS = 10_000;

/** Failed AUTHs for one scope (clients, or usernames), and the locks they earned. */
class FailureLedger {
  private readonly entries = new Map<string, Entry>();
  /** Attempts admitted and not settled yet, per key: they hold room like failures, so parallel AUTHs cannot overshoot the limit. */
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly scope: LockScope,
    private readonly threshold: number,
    private readonly settings: LockoutSettings,
  ) {}

  lockedUntil(key: string, now: number): number | undefined {
    const until = this.entries.get(key)?.until ?? 0;
    return until > now ? until : undefined;
  }

  /** Whether one more attempt may start without possibly exceeding the limit should all in flight fail. */
  hasRoom(key: string, now: number): boolean {
    if (this.threshold === 0) return true;
    const failures = this.entries.get(key)?.failures.count(now) ?? 0;
    return failures + (this.inFlight.get(key) ?? 0) < this.threshold;
  }

  begin(key: string): void {
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
  }

  end(key: string): void {
    const left = (this.inFlight.get(key) ?? 1) - 1;
    if (left > 0) this.inFlight.set(key, left);
    else this.inFlight.delete(key);
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
    entry.failures.add(now);
    // Evicted only after the failure is in, and never the key that just failed: a full table keeps counting.
    this.evict(key, now);
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

  /**
   * Map order is least recently failed first. The oldest key not under a lock
   * goes, so filling the table neither stops counting nor lifts a lock; only
   * a table of nothing but locks gives up its oldest lock.
   */
  private evict(keep: string, now: number): void {
    if (this.entries.size <= MAX_KEYS) return;
    for (const [key, entry] of this.entries) {
      if (key !== keep && entry.until <= now) {
        this.entries.delete(key);
        return;
      }
    }
    const oldest = this.entries.keys().next().value;
    if (oldest !== undefined && oldest !== keep) this.entries.delete(oldest);
  }
}

/**
 * Brute-force lockout, per client and per username (from any client). Past
 * `ip_failures` / `username_failures` failed AUTHs within `window`, AUTH is
 * refused without checking the password for `duration`, doubling with each
 * further lock up to `max_duration`. The defaults (5 and 10 in 15 minutes)
 * leave room for a device that tries all its mechanisms with one mistyped
 * password, several times over. A client is an IPv4 address or an IPv6
 * network of `ipv6_prefix` bits, since one IPv6 host owns a whole /64.
 */
export class Lockout {
  private readonly ips: FailureLedger;
  private readonly usernames: FailureLedger;
  /** Resolved whenever an admitted attempt settles, waking attempts that waited for room. */
  private settled?: { promise: Promise<void>; resolve: () => void };

  constructor(private readonly settings: LockoutSettings) {
    this.ips = new FailureLedger('ip', settings.ip_failures, settings);
    this.usernames = new FailureLedger('username', settings.username_failures, settings);
  }

  /** The key a client's failures are counted under: its IPv4 address, or its IPv6 network. */
  keyOf(clientIp: string): string {
    return clientKey(clientIp, this.settings.ipv6_prefix);
  }

  /** The lock that stops this attempt, if any. `username` undefined: the attempt counts against the client only. */
  check(clientIp: string, username: string | undefined, now: number): Lock | undefined {
    const ip = this.keyOf(clientIp);
    const ipUntil = this.ips.lockedUntil(ip, now);
    if (ipUntil) return { scope: 'ip', key: ip, until: ipUntil };
    if (username === undefined) return undefined;
    const user = username.toLowerCase();
    const userUntil = this.usernames.lockedUntil(user, now);
    if (userUntil) return { scope: 'username', key: user, until: userUntil };
    return undefined;
  }

  /**
   * Lets an attempt through unless it is locked out. An attempt that would
   * exceed the limit should all those in flight fail waits for them to
   * settle first, so parallel AUTHs get no more password checks than
   * sequential ones; a legitimate burst of logins is delayed, not refused.
   */
  async admit(clientIp: string, username: string | undefined): Promise<Lock | AdmittedAttempt> {
    const ip = this.keyOf(clientIp);
    const user = username?.toLowerCase();
    for (;;) {
      const now = Date.now();
      const lock = this.check(clientIp, user, now);
      if (lock) return lock;
      if (this.ips.hasRoom(ip, now) && (user === undefined || this.usernames.hasRoom(user, now))) break;
      await this.nextSettle();
    }
    this.ips.begin(ip);
    if (user !== undefined) this.usernames.begin(user);
    let open = true;
    /** Runs the outcome of the first settle only, then frees the attempt's room. */
    const settle = <T>(outcome: () => T, otherwise: T): T => {
      if (!open) return otherwise;
      open = false;
      const result = outcome();
      this.ips.end(ip);
      if (user !== undefined) this.usernames.end(user);
      this.wakeWaiters();
      return result;
    };
    return {
      failed: () => settle(() => this.fail(clientIp, user, Date.now()), []),
      succeeded: () => settle(() => this.succeed(clientIp), undefined),
      withdrawn: () => settle(() => undefined, undefined),
    };
  }

  /** Counts a failed AUTH against the client and (unless undefined) the username; returns the locks it triggered. */
  fail(clientIp: string, username: string | undefined, now: number): Lock[] {
    const locks = [this.ips.fail(this.keyOf(clientIp), now)];
    if (username !== undefined) locks.push(this.usernames.fail(username.toLowerCase(), now));
    return locks.filter((lock) => lock !== undefined);
  }

  succeed(clientIp: string): void {
    this.ips.succeed(this.keyOf(clientIp));
  }

  private nextSettle(): Promise<void> {
    if (!this.settled) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => (resolve = done));
      this.settled = { promise, resolve };
    }
    return this.settled.promise;
  }

  private wakeWaiters(): void {
    const settled = this.settled;
    this.settled = undefined;
    settled?.resolve();
  }
}
