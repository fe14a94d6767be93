import { Transform, type TransformCallback } from 'node:stream';

/** Header blocks larger than this are not scanned; the Message-ID is only for logs. */
const MAX_HEADER_SCAN = 64 * 1024;

/**
 * Passes a message through unchanged while noting its Message-ID header, so
 * the accept log line can name it without a second read of the file.
 */
export class HeaderScanner extends Transform {
  private head = '';
  private done = false;
  messageId?: string;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.done) {
      this.head += chunk.toString('latin1', 0, Math.min(chunk.length, MAX_HEADER_SCAN - this.head.length));
      const end = this.head.indexOf('\r\n\r\n');
      if (end !== -1 || this.head.length >= MAX_HEADER_SCAN) this.finish(end === -1 ? this.head : this.head.slice(0, end));
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.done) this.finish(this.head);
    callback();
  }

  private finish(headers: string): void {
    this.done = true;
    this.head = '';
    const match = /^message-id:[ \t]*(.*(?:\r\n[ \t].*)*)/im.exec(headers);
    if (match) this.messageId = match[1].replace(/\r\n[ \t]+/g, ' ').trim();
  }
}
