import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A raw client that gets as far as DATA's 354 and returns its socket, so a
 * test can send half a message and then hang up (or kill the server).
 */
export async function openDataSession(port: number, from: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setTimeout(5000, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  const replies: string[] = [];
  let buffer = '';
  socket.on('data', (chunk) => {
    buffer += chunk.toString();
    let at: number;
    while ((at = buffer.indexOf('\r\n')) !== -1) {
      replies.push(buffer.slice(0, at));
      buffer = buffer.slice(at + 2);
    }
  });
  const expect = async (code: string) => {
    for (let i = 0; i < 200 && !replies.some((r) => r.startsWith(`${code} `)); i++) await sleep(10);
    const index = replies.findIndex((r) => r.startsWith(`${code} `));
    assert.ok(index !== -1, `expected ${code}, got ${replies.join(' | ')}`);
    replies.splice(0, index + 1);
  };
  await expect('220');
  for (const [line, code] of [
    ['EHLO raw.test', '250'],
    [`MAIL FROM:<${from}>`, '250'],
    ['RCPT TO:<a@example.org>', '250'],
    ['DATA', '354'],
  ]) {
    socket.write(`${line}\r\n`);
    await expect(code);
  }
  return socket;
}

/** Starts DATA, sends half a message and hangs up. */
export async function dropMidData(port: number, from: string): Promise<void> {
  const socket = await openDataSession(port, from);
  socket.write('Subject: cut short\r\n\r\nthe first half of a message');
  await sleep(100);
  socket.destroy();
}
