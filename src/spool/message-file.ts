import { closeSync, fstatSync, openSync, readSync, writevSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { fsyncFd, writeAll } from './durable-file.js';
import { noteStreamed } from './stream-memory.js';

/**
 * One spooled message is one file: a line of JSON (its record) and then the
 * message exactly as it will be sent. One file means one inode to allocate
 * and one fsync per message; the record cannot be separated from its body.
 */

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * Writes a new message file: the record line, then the body. The record is
 * awaited only when the first body bytes (or the end) arrive, so whoever
 * writes the file may settle it once it has read the header block. Finishes
 * only once everything is fsync'd.
 */
export class MessageFileWriter extends Writable {
  private fd?: number;
  private readonly recordReady: Promise<void>;
  private record?: Buffer;
  private recordWritten = false;
  private bodyBytes = 0;

  constructor(
    private readonly path: string,
    recordLine: Promise<string>,
  ) {
    super();
    this.recordReady = recordLine.then((line) => {
      this.record = Buffer.from(`${line}\n`);
    });
    // A body that fails before its first byte never asks for the record: its rejection is not news.
    this.recordReady.catch(() => undefined);
  }


  /** Body bytes written so far (the record line not counted). */
  get bodySize(): number {
    return this.bodyBytes;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    try {
      this.fd = openSync(this.path, 'wx', 0o600);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    if (!this.record) {
      this.recordReady.then(() => this._writev(chunks, callback), callback);
      return;
    }
    try {
      const buffers = chunks.map(({ chunk }) => chunk);
      for (const buffer of buffers) this.bodyBytes += buffer.length;
      if (!this.recordWritten) buffers.unshift(this.takeRecord());
      const total = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
      // One writev for the lot; only a short write (a filling disk) falls back to writing the rest piece by piece.
      const written = writevSync(this.fd!, buffers);
      if (written < total) writeAll(this.fd!, Buffer.concat(buffers).subarray(written));
      noteStreamed(total);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.record) {
      this.recordReady.then(() => this._final(callback), callback);
      return;
    }
    try {
      if (!this.recordWritten) writeAll(this.fd!, this.takeRecord());
    } catch (err) {
      callback(err as Error);
      return;
    }
    fsyncFd(this.fd!).then(() => {
      closeSync(this.fd!);
      this.fd = undefined;
      callback();
    }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    callback(error);
  }

  private takeRecord(): Buffer {
    this.recordWritten = true;
    return this.record!;
  }
}

/** The record line of a message file, where its body starts, and how many bytes of body follow. */
export function readRecordLine(path: string): { record: string; bodyStart: number; bodySize: number } {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    for (let position = 0; ; ) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const read = readSync(fd, chunk, 0, CHUNK, position);
      if (read === 0) throw new Error(`${path}: no record line`);
      const end = chunk.subarray(0, read).indexOf(NEWLINE);
      chunks.push(chunk.subarray(0, end === -1 ? read : end));
      position += read;
      if (end !== -1) {
        const record = Buffer.concat(chunks);
        const bodyStart = record.length + 1;
        return { record: record.toString('utf8'), bodyStart, bodySize: fstatSync(fd).size - bodyStart };
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** A message file's body (everything after the record line), streamed in 64 KB reads. */
export class MessageBodyReader extends Readable {
  private fd?: number;
  private position = 0;

  constructor(private readonly path: string) {
    super({ highWaterMark: CHUNK });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    try {
      this.position = readRecordLine(this.path).bodyStart;
      this.fd = openSync(this.path, 'r');
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _read(): void {
    try {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const read = readSync(this.fd!, chunk, 0, CHUNK, this.position);
      this.position += read;
      noteStreamed(read);
      this.push(read === 0 ? null : chunk.subarray(0, read));
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    callback(error);
  }
}
