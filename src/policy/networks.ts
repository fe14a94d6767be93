import ipaddr from 'ipaddr.js';
import { parseNetwork, type Network } from '../config/network.js';

/** A set of CIDR ranges, matched the same way whether a client arrives as IPv4 or IPv4-mapped IPv6. */
export class NetworkList {
  private readonly ranges: Network[];

  constructor(readonly cidrs: readonly string[]) {
    this.ranges = cidrs.map(parseNetwork);
  }

  contains(ip: string): boolean {
    if (!ipaddr.isValid(ip)) return false;
    const address = ipaddr.process(ip);
    return this.ranges.some(([network, bits]) => network.kind() === address.kind() && address.match(network, bits));
  }
}
