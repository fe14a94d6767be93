import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;

/**
 * Turns bare LF line ends into CRLF, the only form SMTP allows on the wire.
 * Old firmware and hand-made clients send bare LF inside DATA; a provider
 * would reject or mangle it.
 */
export class CrlfNormalizer extends Transform {
  /** Last byte of the previous chunk: a CRLF may be split across chunks. */
  private previous = -1;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const bareAt: number[] = [];
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      if ((i === 0 ? this.previous : chunk[i - 1]) !== CR) bareAt.push(i);
    }
    if (chunk.length > 0) this.previous = chunk[chunk.length - 1];
    if (bareAt.length === 0) return callback(null, chunk);
    const parts: Buffer[] = [];
    let from = 0;
    for (const at of bareAt) {
      parts.push(chunk.subarray(from, at), CRLF_CR);
      from = at;
    }
    parts.push(chunk.subarray(from));
    callback(null, Buffer.concat(parts));
  }
}

const CRLF_CR = Buffer.from([CR]);
