import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const LINE_END = /\r\n|\r|\n/g;

/** Whether a chunk (whose last byte is not CR) holds a CR or LF that is not part of a CRLF, without copying it. */
function hasBareLineEnd(data: Buffer): boolean {
  for (let i = data.indexOf(LF); i !== -1; i = data.indexOf(LF, i + 1)) if (i === 0 || data[i - 1] !== CR) return true;
  for (let i = data.indexOf(CR); i !== -1; i = data.indexOf(CR, i + 1)) if (data[i + 1] !== LF) return true;
  return false;
}

/**
 * Makes every line end CRLF, the only form SMTP allows on the wire. Old
 * firmware and hand-made clients send bare LF; a bare CR is worse: a
 * provider that reads `<CR>.<CR><LF>` as the end of DATA could be fed a
 * smuggled second message. Both become CRLF.
 */
export class CrlfNormalizer extends Transform {
  /** A CR at the end of a chunk: whether it is bare depends on the next chunk's first byte. */
  private heldCr = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let data = this.heldCr ? Buffer.concat([Buffer.from([CR]), chunk]) : chunk;
    this.heldCr = data.length > 0 && data[data.length - 1] === CR;
    if (this.heldCr) data = data.subarray(0, -1);
    if (!hasBareLineEnd(data)) return callback(null, data);
    callback(null, Buffer.from(data.toString('latin1').replace(LINE_END, '\r\n'), 'latin1'));
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.heldCr ? Buffer.from('\r\n') : undefined);
  }
}
