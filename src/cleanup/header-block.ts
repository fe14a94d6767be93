/**
 * The header block of a message as raw fields, kept byte for byte (latin1
 * strings map bytes 1:1) so that whatever is not edited goes out unchanged.
 */
export interface HeaderField {
  /** Field name as written. */
  name: string;
  /** Everything after the colon, folding included, without the final CRLF. */
  value: string;
}

/** Splits a CRLF header block (without the blank line) into fields; folded lines stay with their field. */
export function parseHeaderBlock(block: string): HeaderField[] {
  if (block === '') return [];
  const fields: HeaderField[] = [];
  for (const line of block.split(/\r\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    // A line without a colon is not a header; it is kept as a nameless field so nothing is lost.
    fields.push(colon === -1 ? { name: '', value: line } : { name: line.slice(0, colon), value: line.slice(colon + 1) });
  }
  return fields;
}

export function formatHeaderBlock(fields: HeaderField[]): string {
  return fields.map((field) => (field.name === '' ? field.value : `${field.name}:${field.value}`)).join('\r\n');
}

export function findField(fields: HeaderField[], name: string): HeaderField | undefined {
  const lower = name.toLowerCase();
  return fields.find((field) => field.name.toLowerCase() === lower);
}

/** A field's value with folding undone and outer white space trimmed. */
export function unfold(value: string): string {
  return value.replace(/\r\n(?=[ \t])/g, '').trim();
}
