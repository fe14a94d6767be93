/**
 * Which envelope addresses a device may use: exact addresses, or "@domain"
 * for a whole domain. Domains compare case-insensitively, local parts exactly
 * (RFC 5321 leaves local-part case to the receiving system).
 */
export class AddressRules {
  private readonly exact = new Set<string>();
  private readonly domains = new Set<string>();

  /** `undefined` rules mean the device may use any address. */
  constructor(rules: readonly string[] | undefined) {
    this.any = rules === undefined;
    for (const rule of rules ?? []) {
      if (rule.startsWith('@')) this.domains.add(rule.slice(1).toLowerCase());
      else this.exact.add(normalize(rule));
    }
  }

  readonly any: boolean;

  allows(address: string): boolean {
    if (this.any) return true;
    const at = address.lastIndexOf('@');
    if (at <= 0) return false;
    return this.exact.has(normalize(address)) || this.domains.has(address.slice(at + 1).toLowerCase());
  }
}

function normalize(address: string): string {
  const at = address.lastIndexOf('@');
  return address.slice(0, at) + address.slice(at).toLowerCase();
}
