import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplyReader } from './smtp-reply.js';

/**
 * A raw client that gets as far as DATA's 354 and returns its socket, so a
 * test can send half a message and then hang up (or kill the server).
 */
export async function openDataSession(port: number, from: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setTimeout(5000, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  const reader = new ReplyReader();
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => reader.push(chunk));
  socket.once('close', () => reader.end());
  const expect = async (code: number): Promise<void> => {
    const reply = await reader.next();
    assert.equal(reply?.code, code, `expected ${code}, got ${JSON.stringify(reply)}`);
  };
  await expect(220);
  for (const [line, code] of [
    ['EHLO raw.test', 250],
    [`MAIL FROM:<${from}>`, 250],
    ['RCPT TO:<a@example.org>', 250],
    ['DATA', 354],
  ] as const) {
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
