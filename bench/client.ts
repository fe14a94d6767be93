import { createHmac } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

/**
 * The benchmark's device: one message per connection, STARTTLS with TLS 1.0
 * and AUTH CRAM-MD5, as the doorphone of the field notes does. Kept minimal
 * so that the generator costs as little CPU as possible.
 */
export interface DeviceTiming {
  /** DATA's final "." sent → 250 received, in ms. */
  dataToReply: number;
  /** Wall-clock time (ms since the epoch, sub-ms) the final "." was sent. */
  dataEndAt: number;
}

const now = () => performance.timeOrigin + performance.now();

class LineReader {
  private buffer = '';
  private waiting?: { resolve: (reply: string) => void; reject: (err: Error) => void };
  private replies: string[] = [];
  private failure?: Error;

  attach(socket: net.Socket | tls.TLSSocket): void {
    socket.on('data', (chunk: Buffer) => this.push(chunk.toString('latin1')));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** The next complete reply (last line of a multi-line one). */
  next(): Promise<string> {
    const ready = this.replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  private push(text: string): void {
    this.buffer += text;
    let at: number;
    while ((at = this.buffer.indexOf('\r\n')) !== -1) {
      const line = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + 2);
      if (line[3] === '-') continue;
      if (this.waiting) {
        const { resolve } = this.waiting;
        this.waiting = undefined;
        resolve(line);
      } else this.replies.push(line);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    if (this.waiting) {
      const { reject } = this.waiting;
      this.waiting = undefined;
      reject(err);
    }
  }
}

async function expect(reader: LineReader, code: string): Promise<string> {
  const reply = await reader.next();
  if (!reply.startsWith(code)) throw new Error(`expected ${code}, got ${reply}`);
  return reply;
}

export async function sendOne(port: number, username: string, password: string, message: Buffer | string): Promise<DeviceTiming> {
  const plain = net.connect(port, '127.0.0.1');
  plain.setNoDelay(true);
  const reader = new LineReader();
  reader.attach(plain);
  try {
    await expect(reader, '220');
    plain.write('EHLO device.bench\r\n');
    await expect(reader, '250');
    plain.write('STARTTLS\r\n');
    await expect(reader, '220');
    plain.removeAllListeners('data');
    const secure = tls.connect({
      socket: plain,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
      rejectUnauthorized: false,
    });
    const tlsReader = new LineReader();
    tlsReader.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    secure.write('EHLO device.bench\r\n');
    await expect(tlsReader, '250');
    secure.write('AUTH CRAM-MD5\r\n');
    const challenge = Buffer.from((await expect(tlsReader, '334')).slice(4), 'base64');
    const digest = createHmac('md5', password).update(challenge).digest('hex');
    secure.write(`${Buffer.from(`${username} ${digest}`).toString('base64')}\r\n`);
    await expect(tlsReader, '235');
    secure.write('MAIL FROM:<doorphone@example.net>\r\nRCPT TO:<owner@example.com>\r\nDATA\r\n');
    await expect(tlsReader, '250');
    await expect(tlsReader, '250');
    await expect(tlsReader, '354');
    secure.write(message);
    const dataEndAt = now();
    secure.write('\r\n.\r\n');
    await expect(tlsReader, '250');
    const dataToReply = now() - dataEndAt;
    secure.end('QUIT\r\n');
    return { dataToReply, dataEndAt };
  } finally {
    plain.destroy();
  }
}
