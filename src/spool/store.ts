import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { createExclusive, syncDirectory, writeFileDurably, writeNewFileSynced } from '../storage/durable-file.js';
import { join } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Who sent a message and where it goes, fixed when the device finished DATA. */
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

export interface RecipientFailure {
  address: string;
  response: string;
}

/** How far delivery has come. Rewritten whole, atomically, after every attempt. */
export interface DeliveryState {
  attempts: number;
  nextAttemptAt: string;
  lastError?: string;
  /** Recipients the provider accepted: never sent again. */
  delivered: string[];
  /** Recipients the provider refused for good. */
  refused: RecipientFailure[];
  /** Set once the message is in the failed area. */
  failedAt?: string;
  reason?: string;
}

export interface SpooledMessage {
  id: string;
  envelope: SpoolEnvelope;
  state: DeliveryState;
  size: number;
  messageId?: string;
}

type Area = 'queue' | 'failed';

export interface WriteOptions {
  /** A queue id from newQueueId(), when the caller needs it before the message is written. */
  id?: string;
  filters?: Transform[];
  messageId?: () => string | undefined;
}

/** The on-disk record beside each body: everything but the id, which is the file name. */
type StoredRecord = Omit<SpooledMessage, 'id'>;

/** fs/promises' readFile goes through a FileHandle; the callback form is cheaper, and records are read once per attempt. */
const readText = promisify(readFile);

const ID_PATTERN = /^[0-9A-Z]{9}[0-9A-F]{10}$/;

/**
 * Messages on disk, Postfix-style: bodies and their records live in queue/
 * until delivered, or in failed/ once given up on. A message is written
 * under tmp/, fsync'd, then renamed into queue/: the body first, then its
 * record, whose presence is what makes the message exist. A crash at any
 * point leaves a complete message or debris that is never taken for one.
 */
export class SpoolStore {
  private readonly tmpDir: string;

  constructor(readonly dir: string) {
    this.tmpDir = join(dir, 'tmp');
  }

  async init(): Promise<void> {
    for (const sub of [this.tmpDir, join(this.dir, 'queue'), join(this.dir, 'failed')]) {
      await mkdir(sub, { recursive: true, mode: 0o700 });
    }
  }

  /** Removes what a crash left behind: half-written files and bodies whose record never landed. */
  async sweep(): Promise<void> {
    for (const name of await readdir(this.tmpDir)) await rm(join(this.tmpDir, name), { force: true });
    for (const area of ['queue', 'failed'] as const) {
      const names = new Set(await readdir(join(this.dir, area)));
      for (const name of names) {
        if (name.endsWith('.eml') && !names.has(name.replace(/\.eml$/, '.json'))) await rm(join(this.dir, area, name), { force: true });
        if (name.endsWith('.lock')) await rm(join(this.dir, area, name), { force: true });
      }
    }
  }

  /**
   * Streams the body through `filters` to disk; resolves once body and record
   * are durable. `messageId` is asked for once the body is written.
   */
  async write(envelope: SpoolEnvelope, body: Readable, options: WriteOptions = {}): Promise<SpooledMessage> {
    const id = options.id ?? newQueueId();
    const tmpBody = join(this.tmpDir, `${id}.eml`);
    const tmpRecord = join(this.tmpDir, `${id}.json`);
    try {
      const file = createWriteStream(tmpBody, { flags: 'wx', mode: 0o600, flush: true });
      await pipeline([body, ...(options.filters ?? []), file]);
      const size = file.bytesWritten;
      const record: StoredRecord = {
        envelope,
        state: { attempts: 0, nextAttemptAt: envelope.receivedAt, delivered: [], refused: [] },
        size,
        messageId: options.messageId?.(),
      };
      await writeNewFileSynced(tmpRecord, JSON.stringify(record));
      await rename(tmpBody, this.path('queue', id, 'eml'));
      await rename(tmpRecord, this.path('queue', id, 'json'));
      await syncDirectory(join(this.dir, 'queue'));
      return { id, ...record };
    } catch (err) {
      await Promise.all([rm(tmpBody, { force: true }), rm(tmpRecord, { force: true })]);
      throw err;
    }
  }

  openBody(id: string, area: Area = 'queue'): Readable {
    return createReadStream(this.path(area, id, 'eml'));
  }

  /** Ids in an area, oldest first (ids sort by arrival). */
  async ids(area: Area = 'queue'): Promise<string[]> {
    const names = await readdir(join(this.dir, area));
    return names
      .filter((name) => name.endsWith('.json'))
      .map((name) => name.slice(0, -5))
      .filter((id) => ID_PATTERN.test(id))
      .sort();
  }

  async list(area: Area = 'queue'): Promise<SpooledMessage[]> {
    const messages = await Promise.all((await this.ids(area)).map((id) => this.read(id, area)));
    return messages.filter((message): message is SpooledMessage => message !== undefined);
  }

  /** The message, or undefined if it is not (or no longer) in that area. */
  async read(id: string, area: Area = 'queue'): Promise<SpooledMessage | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    try {
      const record = JSON.parse(await readText(this.path(area, id, 'json'), 'utf8')) as StoredRecord;
      return { id, ...record };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Replaces a queued message's delivery state. Returns false, writing
   * nothing, if the message was deleted meanwhile (e.g. by `queue delete`).
   */
  async saveState(message: SpooledMessage): Promise<boolean> {
    if (!(await exists(this.path('queue', message.id, 'eml')))) return false;
    const { id: _id, ...record } = message;
    await writeFileDurably(this.path('queue', message.id, 'json'), JSON.stringify(record));
    return true;
  }

  /** Removes a message; the record goes first so a crash never leaves a record without its body. */
  async remove(id: string, area: Area = 'queue'): Promise<void> {
    await unlinkIfPresent(this.path(area, id, 'json'));
    await unlinkIfPresent(this.path(area, id, 'eml'));
    await syncDirectory(join(this.dir, area));
  }

  /** Moves a message between queue/ and failed/, body first, with its state as given. */
  async move(message: SpooledMessage, from: Area, to: Area): Promise<void> {
    const { id, ...record } = message;
    const tmp = join(this.tmpDir, `${id}.move.json`);
    await writeNewFileSynced(tmp, JSON.stringify(record));
    await rename(this.path(from, id, 'eml'), this.path(to, id, 'eml'));
    await rename(tmp, this.path(to, id, 'json'));
    await rm(this.path(from, id, 'json'), { force: true });
    await syncDirectory(join(this.dir, to));
    await syncDirectory(join(this.dir, from));
  }

  /**
   * Marks a queued message as being delivered, so the queue tools can refuse
   * to delete it mid-delivery. Returns false if another holder has it.
   */
  async lock(id: string): Promise<boolean> {
    return createExclusive(this.path('queue', id, 'lock'));
  }

  async unlock(id: string): Promise<void> {
    await unlinkIfPresent(this.path('queue', id, 'lock'));
  }

  isLocked(id: string): Promise<boolean> {
    return exists(this.path('queue', id, 'lock'));
  }

  path(area: Area, id: string, kind: 'eml' | 'json' | 'lock'): string {
    return join(this.dir, area, `${id}.${kind}`);
  }
}

/** Sortable by arrival, unique without coordination: milliseconds then random bits. */
export function newQueueId(): string {
  return Date.now().toString(36).toUpperCase().padStart(9, '0') + randomBytes(5).toString('hex').toUpperCase();
}

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

/** unlink without rm's extra lstat: these are plain files, and gone is fine. */
async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
