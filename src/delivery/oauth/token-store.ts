import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { describeFsError } from '../../config/secrets.js';
import { removeFileDurably, writeFileDurably } from '../../spool/durable-file.js';

const isoDate = z.iso.datetime();

/** An account's token file: the refresh token is the one thing that must never be lost. */
const storedTokensSchema = z.object({
  refresh_token: z.string().min(1).optional(),
  access_token: z.string().min(1).optional(),
  expires_at: isoDate.optional(),
  scope: z.string().optional(),
  /** When `oauth login` made this file. */
  logged_in_at: isoDate.optional(),
  last_refresh: isoDate.optional(),
});
export type StoredTokens = z.output<typeof storedTokensSchema>;

/** The last failed refresh, kept beside the token file (never inside it: see recordError). */
const lastErrorSchema = z.object({ error: z.string(), at: isoDate });
export type LastError = z.output<typeof lastErrorSchema>;

/**
 * One account's token file. Written whole or not at all (temp file, fsync,
 * rename, directory fsync; mode 0600 in a 0700 directory), so a kill -9 at
 * any moment leaves either the old refresh token or the new one on disk.
 */
export class TokenStore {
  private seen?: string;

  constructor(readonly file: string) {}

  private get errorFile(): string {
    return `${this.file}.error`;
  }

  /** The tokens, or undefined when there is no file yet (no `oauth login` so far). */
  async read(): Promise<StoredTokens | undefined> {
    const stamp = await this.stamp();
    if (stamp === undefined) return undefined;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read token file ${this.file}: ${describeFsError(err)}`);
    }
    this.seen = stamp;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`token file ${this.file} is not JSON; run smtp-bridge oauth login again`);
    }
    const result = storedTokensSchema.safeParse(parsed);
    if (!result.success) throw new Error(`token file ${this.file} is damaged; run smtp-bridge oauth login again`);
    return result.data;
  }

  /** True when someone else (`oauth login`) replaced the file since this store last read or wrote it. */
  async changed(): Promise<boolean> {
    return (await this.stamp()) !== this.seen;
  }

  async write(tokens: StoredTokens): Promise<void> {
    try {
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFileDurably(this.file, `${JSON.stringify(tokens, null, 2)}\n`);
    } catch (err) {
      throw new Error(`cannot save token file ${this.file}: ${describeFsError(err)}`);
    }
    this.seen = await this.stamp();
  }

  /**
   * In a file of its own: writing it into the token file could put back an old
   * refresh token over the one `oauth login` has just written.
   */
  async recordError(error: string): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFile(this.errorFile, `${JSON.stringify({ error, at: new Date().toISOString() })}\n`, { mode: 0o600 });
  }

  async clearError(): Promise<void> {
    await removeFileDurably(this.errorFile);
  }

  async lastError(): Promise<LastError | undefined> {
    try {
      const result = lastErrorSchema.safeParse(JSON.parse(await readFile(this.errorFile, 'utf8')));
      return result.success ? result.data : undefined;
    } catch {
      return undefined;
    }
  }

  /** Identity and version of the file: a rename over it changes the inode, a write the mtime. */
  private async stamp(): Promise<string | undefined> {
    try {
      const info = await stat(this.file);
      return `${info.ino}:${info.mtimeMs}:${info.size}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`cannot read token file ${this.file}: ${describeFsError(err)}`);
    }
  }
}
