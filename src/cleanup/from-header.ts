/**
 * Rewrites a From: value to another address while keeping the device's
 * display name: `Doorphone <cam@lan>` → `Doorphone <account@isp>`.
 * Providers refuse mail whose From does not match the logged-in account.
 */
export function rewriteFromValue(value: string, address: string): string {
  return ` ${withDisplayName(displayNameOf(value), address)}`;
}

/** The display name of a single mailbox (RFC 5322 name-addr or addr-spec with a comment), unquoted. */
export function displayNameOf(value: string): string {
  const text = value.replace(/\r\n(?=[ \t])/g, '').trim();
  const angle = text.lastIndexOf('<');
  if (angle > 0) return unquote(text.slice(0, angle).trim());
  // Old style "addr (Display Name)".
  const comment = /\(([^()]*)\)\s*$/.exec(text);
  return comment ? comment[1].trim() : '';
}

export function withDisplayName(name: string, address: string): string {
  return name ? `${quoteIfNeeded(name)} <${address}>` : `<${address}>`;
}

/** RFC 5322 specials (and quotes) force a quoted-string; encoded words and plain atoms stay as they are. */
function quoteIfNeeded(name: string): string {
  if (/^=\?[^?]+\?[bBqQ]\?[^?]*\?=(\s+=\?[^?]+\?[bBqQ]\?[^?]*\?=)*$/.test(name)) return name;
  if (!/[()<>[\]:;@\\,."]/.test(name)) return name;
  return `"${name.replace(/(["\\])/g, '\\$1')}"`;
}

function unquote(phrase: string): string {
  const quoted = /^"((?:[^"\\]|\\.)*)"$/.exec(phrase);
  return quoted ? quoted[1].replace(/\\(.)/g, '$1') : phrase;
}
