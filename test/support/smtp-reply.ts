/** One complete server reply: its code, and its lines' texts (without the codes) joined by \n. */
export interface SmtpReplyLine {
  code: number;
  text: string;
}

/** A reply as it looked on the wire: "250-first", "250-…", "250 last". */
export function replyLines(code: number, text: string): string[] {
  const lines = text.split('\n');
  return lines.map((line, i) => `${code}${i < lines.length - 1 ? '-' : ' '}${line}`);
}

/** Splits a stream of SMTP server output into complete (possibly multiline) replies. */
export class ReplyReader {
  private buffered = '';
  private lines: string[] = [];
  private readonly ready: SmtpReplyLine[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).replace(/\r$/, '');
      this.buffered = this.buffered.slice(nl + 1);
      this.lines.push(line);
      const m = /^(\d{3})(?: |$)/.exec(line);
      if (m) {
        this.ready.push({ code: Number(m[1]), text: this.lines.map((l) => l.slice(4)).join('\n') });
        this.lines = [];
      }
    }
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async next(): Promise<SmtpReplyLine | null> {
    while (this.ready.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
    return this.ready.shift() ?? null;
  }
}

/** The code of the last server reply in a client's verbose log, before the client's own QUIT. */
export function lastReplyBeforeQuit(transcript: string, replyPrefix: string, quit: string): number | null {
  let code: number | null = null;
  for (const line of transcript.split('\n')) {
    if (line.startsWith(quit)) break;
    const m = /^(\d{3})[ -]/.exec(line.startsWith(replyPrefix) ? line.slice(replyPrefix.length) : '');
    if (m) code = Number(m[1]);
  }
  return code;
}
