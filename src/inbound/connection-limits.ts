import type { LimitSettings } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { clientKey } from '../policy/client-key.js';

export type Refusal = 'max_connections' | 'max_connections_per_ip';

/** Connections are counted per IPv6 /64: a site hands each LAN one, and whoever has one address in it has them all. */
const IPV6_CLIENT_PREFIX = 64;

/**
 * Open connections across every listener, in total and per client (an IPv4
 * address or an IPv6 /64), counted from accept to close, TLS handshakes included.
 * A refusal is logged once when a limit is first hit and once when it
 * clears, however many connections it turned away in between.
 */
export class ConnectionLimits {
  private total = 0;
  private readonly perClient = new Map<string, number>();
  /** Refusals since each limit was hit, by "max_connections" or the client's key. */
  private readonly refusing = new Map<string, number>();

  constructor(
    private readonly limits: Pick<LimitSettings, Refusal>,
    private readonly logger: Logger,
  ) {}

  /** Counts a new connection: a function to call once it closes, or the limit it would break. */
  admit(address: string): (() => void) | Refusal {
    const key = clientKey(address, IPV6_CLIENT_PREFIX);
    const open = this.perClient.get(key) ?? 0;
    if (this.total >= this.limits.max_connections) return this.refuse('max_connections', 'max_connections', address);
    if (open >= this.limits.max_connections_per_ip) return this.refuse(key, 'max_connections_per_ip', address);
    this.total++;
    this.perClient.set(key, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release(key);
    };
  }

  private refuse(condition: string, limit: Refusal, address: string): Refusal {
    const refused = this.refusing.get(condition);
    this.refusing.set(condition, (refused ?? 0) + 1);
    if (refused === undefined) {
      this.logger.warn(
        { limit, max: this.limits[limit], client_ip: address },
        limit === 'max_connections' ? 'connections refused: too many open' : 'connections refused: too many from one client',
      );
    }
    return limit;
  }

  private release(key: string): void {
    this.total--;
    const open = (this.perClient.get(key) ?? 1) - 1;
    if (open > 0) this.perClient.set(key, open);
    else this.perClient.delete(key);
    if (open < this.limits.max_connections_per_ip) this.cleared(key, 'max_connections_per_ip');
    if (this.total < this.limits.max_connections) this.cleared('max_connections', 'max_connections');
  }

  private cleared(condition: string, limit: Refusal): void {
    const refused = this.refusing.get(condition);
    if (refused === undefined) return;
    this.refusing.delete(condition);
    this.logger.info(
      { limit, refused, ...(limit === 'max_connections_per_ip' ? { client: condition } : {}) },
      'connections accepted again',
    );
  }
}
