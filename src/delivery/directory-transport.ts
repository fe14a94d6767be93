import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DirectoryUpstream } from '../config/schema.js';
import type { Accepted, Recipients, Transport } from './transport.js';

/**
 * Capture upstream: writes each message as NAME.eml with its envelope in
 * NAME.json, for trying the bridge out and for tests. Delivers nowhere.
 */
export class DirectoryTransport implements Transport {
  readonly concurrency = 2;

  constructor(
    readonly name: string,
    private readonly upstream: DirectoryUpstream,
  ) {}

  async send(envelope: Recipients, body: () => Readable): Promise<Accepted> {
    // Captured mail is as private as the spool it came from: only the bridge's user may read it, whatever the umask.
    await mkdir(this.upstream.path, { recursive: true, mode: 0o700 });
    const base = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}`;
    const partial = join(this.upstream.path, `.${base}.eml`);
    await pipeline(body(), createWriteStream(partial, { flags: 'wx', flush: true, mode: 0o600 }));
    const recipients = JSON.stringify({ from: envelope.sender, to: envelope.to }, null, 2) + '\n';
    await writeFile(join(this.upstream.path, `${base}.json`), recipients, { mode: 0o600 });
    await rename(partial, join(this.upstream.path, `${base}.eml`));
    return { response: `250 2.0.0 captured as ${base}.eml`, accepted: envelope.to, refused: [] };
  }

  async close(): Promise<void> {}
}
