import { Transform, type TransformCallback } from 'node:stream';
import { rewriteFromValue } from './from-header.js';
import { findField, formatHeaderBlock, parseHeaderBlock, unfold } from './header-block.js';
import { rfc5322Date } from './received.js';

/** Header blocks larger than this are passed through with only the Received: line added. */
const MAX_HEADER_BLOCK = 64 * 1024;

export interface HeaderEdits {
  /** The complete Received: field, without its final CRLF. */
  received: string;
  /** Used for Date: and Message-ID: when the message has none. */
  date: Date;
  generatedMessageId: string;
  /** When set, the From: header's address becomes this (display name kept). */
  fromAddress?: string;
}

/**
 * Postfix's cleanup for the header block, on a CRLF stream: prepends
 * Received:, adds Date: and Message-ID: if missing, optionally rewrites
 * From:. Only the header block is held in memory; every byte of it that is
 * not edited, and the whole body, passes unchanged.
 */
export class HeaderCleanup extends Transform {
  private head = '';
  private inBody = false;
  private settleMessageId!: (id: string | undefined) => void;
  /**
   * The message's Message-ID after cleanup (its own, or the one added);
   * settled before the first byte leaves, undefined for a header block too
   * large to edit.
   */
  readonly messageId = new Promise<string | undefined>((resolve) => (this.settleMessageId = resolve));

  constructor(private readonly edits: HeaderEdits) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.inBody) return callback(null, chunk);
    this.head += chunk.toString('latin1');
    const end = this.head.startsWith('\r\n') ? 0 : this.head.indexOf('\r\n\r\n');
    if (end !== -1) return callback(null, this.release(this.head.slice(0, end), this.head.slice(end)));
    if (this.head.length > MAX_HEADER_BLOCK) {
      this.inBody = true;
      this.settleMessageId(undefined);
      const passed = `${this.edits.received}\r\n${this.head}`;
      this.head = '';
      return callback(null, Buffer.from(passed, 'latin1'));
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.inBody) return callback();
    // A message that is all header (or empty): the block runs to the end.
    const block = this.head.endsWith('\r\n') ? this.head.slice(0, -2) : this.head;
    callback(null, this.release(block, this.head.slice(block.length)));
  }

  private release(block: string, rest: string): Buffer {
    this.inBody = true;
    this.head = '';
    const fields = parseHeaderBlock(block);
    const added = [this.edits.received];
    if (!findField(fields, 'Date')) added.push(`Date: ${rfc5322Date(this.edits.date)}`);
    const messageId = findField(fields, 'Message-ID');
    if (!messageId) added.push(`Message-ID: ${this.edits.generatedMessageId}`);
    this.settleMessageId(messageId ? unfold(messageId.value) : this.edits.generatedMessageId);
    const from = this.edits.fromAddress ? findField(fields, 'From') : undefined;
    if (from) from.value = rewriteFromValue(from.value, this.edits.fromAddress!);
    return Buffer.from(`${added.join('\r\n')}\r\n${formatHeaderBlock(fields)}${rest}`, 'latin1');
  }
}
