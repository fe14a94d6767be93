import ipaddr from 'ipaddr.js';

export type Network = [address: ipaddr.IPv4 | ipaddr.IPv6, bits: number];

/**
 * "192.168.1.0/24", "fd00::/8" or a single address. IPv4-mapped IPv6
 * networks become their IPv4 form, so they match IPv4 clients. Throws on
 * anything else.
 */
export function parseNetwork(text: string): Network {
  if (!text.includes('/')) {
    const address = ipaddr.process(text);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  }
  const [address, bits] = ipaddr.parseCIDR(text);
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? [(address as ipaddr.IPv6).toIPv4Address(), bits - 96]
    : [address, bits];
}

const LAN_RANGES = { ipv4: ['private', 'loopback', 'linkLocal'], ipv6: ['uniqueLocal', 'loopback', 'linkLocal'] };
/** A big office network at most; wider ranges hold more than one LAN. */
const LAN_PREFIX = { ipv4: 16, ipv6: 48 };

/** Whether a network stays within one LAN: a private, loopback or link-local range no wider than /16 (IPv4) or /48 (IPv6). */
export function isLanSized([address, bits]: Network): boolean {
  const kind = address.kind();
  return bits >= LAN_PREFIX[kind] && LAN_RANGES[kind].includes(address.range());
}
