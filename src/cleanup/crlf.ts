import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const BARE = /\r(?!\n)|(?<!\r)\n/;
const LINE_END = /\r\n|\r|\n/g;

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
    const text = data.toString('latin1');
    callback(null, BARE.test(text) ? Buffer.from(text.replace(LINE_END, '\r\n'), 'latin1') : data);
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.heldCr ? Buffer.from('\r\n') : undefined);
  }
}
