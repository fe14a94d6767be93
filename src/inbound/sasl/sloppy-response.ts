const CR = 0x0d;
const LF = 0x0a;

/**
 * A base64 SASL response whose decoded value ends in CR or LF — the mark of
 * `echo … | base64` in hand-made scripts (field note 5) — re-encoded without
 * them. Old servers accepted such responses; smtp-server refuses a LOGIN user
 * name with one and would pass a PLAIN password on with it. Undefined when
 * there is nothing to take out, or the line is not base64 (smtp-server judges that).
 */
export function withoutEncodedLineEnd(response: string): string | undefined {
  const text = response.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const decoded = Buffer.from(text, 'base64');
  let end = decoded.length;
  while (end > 0 && (decoded[end - 1] === CR || decoded[end - 1] === LF)) end -= 1;
  return end === decoded.length ? undefined : decoded.subarray(0, end).toString('base64');
}
