import net from 'node:net';
import tls from 'node:tls';
import { ReplyReader, type SmtpReplyLine } from './smtp-reply.js';

export interface LineClientOptions {
  port: number;
  host?: string;
  /** Implicit TLS from the first byte (any certificate accepted). */
  tls?: boolean;
  /** Local address to connect from, to play another client (any 127.0.0.0/8 address on Linux). */
  localAddress?: string;
}

const TIMED_OUT = Symbol('timed out');

/**
 * A hand-driven SMTP client for input no real client sends: raw bytes in,
 * complete (multi-line) replies out. Every wait is bounded.
 */
export class LineClient {
  private readonly reader = new ReplyReader();
  /** A read that timed out is still waiting for its reply: the next read takes it over, so no reply is lost. */
  private pending?: Promise<SmtpReplyLine | null>;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.reader.push(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => this.reader.end());
  }

  static connect(options: LineClientOptions): Promise<LineClient> {
    const host = options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const tcp = net.connect({ host, port: options.port, localAddress: options.localAddress });
      tcp.once('error', reject);
      if (!options.tls) {
        tcp.once('connect', () => resolve(new LineClient(tcp)));
        return;
      }
      const socket = tls.connect({ socket: tcp, rejectUnauthorized: false }, () => resolve(new LineClient(socket)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  write(data: string | Buffer): void {
    if (!this.isClosed) this.socket.write(data);
  }

  /** The next complete reply; null if the server closed first or nothing came within `timeoutMs`. */
  async reply(timeoutMs = 5000): Promise<SmtpReplyLine | null> {
    const next = (this.pending ??= this.reader.next());
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs)));
    const result = await Promise.race([next, timeout]);
    clearTimeout(timer);
    if (result === TIMED_OUT) return null;
    this.pending = undefined;
    return result;
  }

  async command(line: string | Buffer, timeoutMs?: number): Promise<SmtpReplyLine | null> {
    this.write(typeof line === 'string' ? `${line}\r\n` : line);
    return this.reply(timeoutMs);
  }

  /** Whether the server has closed the connection by `timeoutMs` from now. */
  async closesWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.closed, timeout]);
    clearTimeout(timer);
    return this.isClosed;
  }

  close(): void {
    this.socket.destroy();
  }
}
