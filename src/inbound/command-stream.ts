import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/** The first line "." in DATA, however its line ends are written: CRLF, or a bare LF on either side. */
const ANY_DATA_END = /(\r?\n)\.(\r?\n)/;
const STRICT_DATA_END = '\r\n.\r\n';

/**
 * smtp-server's command and DATA parser with two additions: it reports each
 * chunk of command input (so the connection can time a whole command line),
 * and, when a device has opted in, it takes a line "." after a bare LF as the
 * end of DATA, as Postfix does for smtpd_forbid_bare_newline_exclusions.
 * Otherwise only <CRLF>.<CRLF> ends DATA, so a bare-LF "." stays content and
 * cannot smuggle a second message.
 */
export class CommandStream extends SMTPStream {
  /** Set per message, before DATA input is read: whether a bare-LF "." ends it. */
  bareLfDataEnd = false;
  /** Called for every chunk that arrives while commands, not a message, are being read. */
  onCommandInput: () => void = () => {};

  override _write(chunk: Buffer, encoding: BufferEncoding | 'buffer', next: (err?: Error | null) => void): void {
    if (!this._dataMode && chunk.length > 0) this.onCommandInput();
    super._write(chunk, encoding, next);
  }

  /**
   * Rewrites the first bare-LF end of DATA into <CRLF>.<CRLF> and leaves the
   * rest to smtp-server. The bytes it held back from the previous chunk come
   * first, so an end split across chunks is still found; the LF turned CRLF
   * is the one the cleanup stage would have turned CRLF anyway.
   */
  override _feedDataStream(chunk: Buffer, done: (err?: Error | null) => void): void {
    if (!this.bareLfDataEnd) return super._feedDataStream(chunk, done);
    let text = (this._lastBytes ? Buffer.concat([this._lastBytes, chunk]) : chunk).toString('latin1');
    this._lastBytes = false;
    if (this._atDataStart && text.startsWith('.\n')) text = `.\r\n${text.slice(2)}`;
    else {
      const end = ANY_DATA_END.exec(text);
      if (end && end[0] !== STRICT_DATA_END) text = text.slice(0, end.index) + STRICT_DATA_END + text.slice(end.index + end[0].length);
    }
    super._feedDataStream(Buffer.from(text, 'latin1'), done);
  }
}
