import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes a message through up to `limit` bytes, then swallows the rest. The
 * device must still be read to the end of DATA before it can hear 552, but
 * nothing past the limit should reach the disk.
 */
export class SizeLimit extends Transform {
  private seen = 0;

  constructor(private readonly limit: number) {
    super();
  }

  get exceeded(): boolean {
    return this.seen > this.limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const room = this.limit - this.seen;
    this.seen += chunk.length;
    if (room <= 0) return callback();
    callback(null, chunk.length <= room ? chunk : chunk.subarray(0, room));
  }
}
