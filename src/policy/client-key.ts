import ipaddr from 'ipaddr.js';

/**
 * Who a client is for counting: an IPv4 address (an IPv4-mapped IPv6 address
 * is the same client), or for IPv6 its network of `ipv6Prefix` bits, written
 * as CIDR ("2001:db8:1:2::/64"). One IPv6 host is given a whole /64 and can
 * pick any address in it, so counting single IPv6 addresses counts nothing.
 */
export function clientKey(clientIp: string, ipv6Prefix: number): string {
  if (!ipaddr.isValid(clientIp)) return clientIp;
  const address = ipaddr.process(clientIp);
  if (address.kind() === 'ipv4') return address.toString();
  const network = ipaddr.IPv6.networkAddressFromCIDR(`${(address as ipaddr.IPv6).toNormalizedString()}/${ipv6Prefix}`);
  return `${network.toString()}/${ipv6Prefix}`;
}
