import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CrlfNormalizer } from './crlf.js';
import { HeaderScanner } from './headers.js';

/** What the spool keeps beside each message body. */
export interface SpoolEnvelope {
  device: string;
  upstream: string;
  clientIp: string;
  tls?: string;
  cipher?: string;
  saslMethod?: string;
  saslUsername?: string;
  from: string;
  to: string[];
  receivedAt: string;
}

export interface SpooledMessage {
  id: string;
  envelope: SpoolEnvelope;
  size: number;
  messageId?: string;
}

/**
 * Messages on disk. A message is written under tmp/, fsync'd, then renamed
 * into queue/: the body first, then its envelope, whose presence is what
 * makes the message exist. A crash at any point leaves either a complete
 * message or debris that is never mistaken for one.
 */
export class SpoolStore {
  private readonly tmpDir: string;
  private readonly queueDir: string;

  constructor(readonly dir: string) {
    this.tmpDir = join(dir, 'tmp');
    this.queueDir = join(dir, 'queue');
  }

  async init(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    await mkdir(this.queueDir, { recursive: true, mode: 0o700 });
  }

  /** Streams the body to disk with CRLF line ends; resolves once body and envelope are durable. */
  async write(envelope: SpoolEnvelope, body: Readable): Promise<SpooledMessage> {
    const id = newQueueId();
    const tmpBody = join(this.tmpDir, `${id}.eml`);
    const tmpEnvelope = join(this.tmpDir, `${id}.json`);
    const scanner = new HeaderScanner();
    try {
      await pipeline(body, new CrlfNormalizer(), scanner, createWriteStream(tmpBody, { flags: 'wx', mode: 0o600, flush: true }));
      const size = (await stat(tmpBody)).size;
      await writeDurably(tmpEnvelope, JSON.stringify(envelope));
      await rename(tmpBody, this.bodyPath(id));
      await rename(tmpEnvelope, this.envelopePath(id));
      await syncDirectory(this.queueDir);
      return { id, envelope, size, messageId: scanner.messageId };
    } catch (err) {
      await Promise.all([rm(tmpBody, { force: true }), rm(tmpEnvelope, { force: true })]);
      throw err;
    }
  }

  openBody(id: string): Readable {
    return createReadStream(this.bodyPath(id));
  }

  async read(id: string): Promise<SpooledMessage> {
    const envelope = JSON.parse(await readFile(this.envelopePath(id), 'utf8')) as SpoolEnvelope;
    const size = (await stat(this.bodyPath(id))).size;
    return { id, envelope, size };
  }

  /** Removes a message; the envelope goes first so a crash never leaves an envelope without its body. */
  async remove(id: string): Promise<void> {
    await rm(this.envelopePath(id), { force: true });
    await rm(this.bodyPath(id), { force: true });
    await syncDirectory(this.queueDir);
  }

  private bodyPath(id: string): string {
    return join(this.queueDir, `${id}.eml`);
  }

  private envelopePath(id: string): string {
    return join(this.queueDir, `${id}.json`);
  }
}

/** Sortable by arrival, unique without coordination: milliseconds then random bits. */
function newQueueId(): string {
  return Date.now().toString(36).toUpperCase().padStart(9, '0') + randomBytes(5).toString('hex').toUpperCase();
}

async function writeDurably(file: string, content: string): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
