import ipaddr from 'ipaddr.js';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A set of CIDR ranges, matched the same way whether a client arrives as IPv4 or IPv4-mapped IPv6. */
export class NetworkList {
  private readonly ranges: Range[];

  constructor(readonly cidrs: readonly string[]) {
    this.ranges = cidrs.map((cidr) => {
      if (!cidr.includes('/')) {
        const address = ipaddr.process(cidr);
        return [address, address.kind() === 'ipv4' ? 32 : 128];
      }
      const [address, bits] = ipaddr.parseCIDR(cidr);
      return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
        ? [(address as ipaddr.IPv6).toIPv4Address(), bits - 96]
        : [address, bits];
    });
  }

  contains(ip: string): boolean {
    if (!ipaddr.isValid(ip)) return false;
    const address = ipaddr.process(ip);
    return this.ranges.some(([network, bits]) => network.kind() === address.kind() && address.match(network, bits));
  }
}
