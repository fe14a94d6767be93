/** Harmless deviations in MAIL FROM / RCPT TO that old firmware sends and old Postfix accepted. */
export type AddressSloppiness = 'no angle brackets' | 'local part ends in a dot';

export interface AddressRepair {
  /** The command in the form smtp-server's strict parser accepts. */
  command: string;
  /**
   * The local part to put back after parsing: a trailing dot is removed only
   * so the rest of the address still gets checked, then restored, so the
   * address reaches the provider as the device wrote it.
   */
  localPart?: string;
  sloppiness: AddressSloppiness[];
}

/**
 * Rewrites `MAIL FROM:user@example.com` to `MAIL FROM:<user@example.com>`
 * and validates `user.@example.com` (HPE iLO and others send it) as
 * `user@example.com`. Returns undefined when there is nothing of the sort to
 * repair; anything else stays as strict as smtp-server makes it.
 */
export function repairAddressCommand(command: string): AddressRepair | undefined {
  const match = /^([^:]*:\s*)(<[^<>]*>|[^\s<>]+)(.*)$/s.exec(command);
  if (!match) return undefined;
  const [, verb, written, parameters] = match;
  const sloppiness: AddressSloppiness[] = [];
  let address = written;
  if (!written.startsWith('<')) {
    sloppiness.push('no angle brackets');
    address = `<${written}>`;
  }
  const at = address.lastIndexOf('@');
  const localPart = at > 1 ? address.slice(1, at) : '';
  const undotted = localPart.replace(/\.+$/, '');
  const dotted = undotted !== localPart && undotted !== '';
  if (dotted) {
    sloppiness.push('local part ends in a dot');
    address = `<${undotted}${address.slice(at)}`;
  }
  if (sloppiness.length === 0) return undefined;
  return { command: `${verb}${address}${parameters}`, localPart: dotted ? localPart : undefined, sloppiness };
}
