import net from 'node:net';
import tls from 'node:tls';

export interface SmtpReply {
  code: number;
  /** The text of every line, without code and separator. */
  lines: string[];
}

/** Receives each line of the conversation: 'C' what the client sent, 'S' what the server answered. */
export type TranscriptLine = (from: 'C' | 'S', text: string) => void;

/**
 * A client-side SMTP conversation a line at a time, for the diagnostics
 * commands: connect, read replies, upgrade to TLS with exactly the options
 * given. Every wait is bounded by `timeoutMs`.
 */
export class SmtpDialogue {
  private buffer = '';
  private waiting?: () => void;
  private failure?: Error;

  private constructor(
    private socket: net.Socket,
    private readonly timeoutMs: number,
    private readonly transcript: TranscriptLine,
  ) {
    this.attach(socket);
  }

  /** Plain TCP, or TLS from the first byte when `implicit` is given. */
  static async open(
    host: string,
    port: number,
    timeoutMs: number,
    implicit?: tls.ConnectionOptions,
    transcript: TranscriptLine = () => {},
  ): Promise<SmtpDialogue> {
    const tcp = await connected(net.connect({ host, port }), 'connect', timeoutMs, `no connection to ${host}:${port}`);
    const dialogue = new SmtpDialogue(tcp, timeoutMs, transcript);
    if (implicit) await dialogue.upgrade(implicit);
    return dialogue;
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  /** Wraps the connection in TLS (after STARTTLS, or at once for implicit TLS). */
  async upgrade(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tls.connect({ ...options, socket: plain });
    this.socket = secure;
    this.attach(secure);
    return connected(secure, 'secureConnect', this.timeoutMs, 'TLS handshake');
  }

  async reply(): Promise<SmtpReply> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const reply = this.take();
      if (reply) return reply;
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${this.timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Sends one line; `shown` is what the transcript gets instead, for lines that carry a secret. */
  async command(line: string, shown = line): Promise<SmtpReply> {
    this.transcript('C', shown);
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** Sends a message body and the terminating dot; the transcript gets its size only. */
  async data(body: string): Promise<SmtpReply> {
    const stuffed = body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.transcript('C', `(message, ${Buffer.byteLength(stuffed)} bytes)`);
    this.socket.write(`${stuffed}${stuffed.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.waiting?.();
    });
    socket.on('error', (err) => {
      this.failure = err;
      this.waiting?.();
    });
    socket.on('close', () => {
      this.failure ??= new Error('connection closed');
      this.waiting?.();
    });
  }

  /** A complete reply from the buffer: lines "250-…" up to the first "250 …". */
  private take(): SmtpReply | undefined {
    const raw: string[] = [];
    let at = 0;
    for (;;) {
      const end = this.buffer.indexOf('\n', at);
      if (end < 0) return undefined;
      const line = this.buffer.slice(at, end).replace(/\r$/, '');
      at = end + 1;
      raw.push(line);
      if (line[3] !== '-') {
        this.buffer = this.buffer.slice(at);
        for (const text of raw) this.transcript('S', text);
        return { code: Number(line.slice(0, 3)), lines: raw.map((text) => text.slice(4)) };
      }
    }
  }
}

function connected<T extends net.Socket>(socket: T, event: string, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${what}: no answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once(event, () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}
