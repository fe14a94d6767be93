import ipaddr from 'ipaddr.js';

/** How much of an IPv6 address one client controls: a site hands each LAN a /64. */
const IPV6_CLIENT_PREFIX = 64;

/**
 * The part of an address that one client owns, for counting per client: an
 * IPv4 address (also when written IPv4-mapped), or the /64 of an IPv6
 * address, since whoever has one address of a /64 can use all of them.
 */
export function clientKey(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${parsed.toString()}/${IPV6_CLIENT_PREFIX}`).toString()}/${IPV6_CLIENT_PREFIX}`;
}
