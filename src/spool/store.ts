import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, readFileSync, renameSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { syncDirectory, unlinkIfPresent, writeFileDurably } from './durable-file.js';
import type { Envelope, MessageRecord, RecipientResult } from '../message.js';
import { MessageBodyReader, MessageFileWriter, readRecordLine } from './message-file.js';

/** How far delivery has come. Kept beside the message once there is any, rewritten whole and atomically. */
export interface DeliveryState {
  attempts: number;
  nextAttemptAt: string;
  lastError?: string;
  /** Recipients the provider accepted: never sent again. */
  delivered: string[];
  /** Recipients the provider refused for good. */
  refused: RecipientResult[];
  /** Set once the message is in the failed area. */
  failedAt?: string;
  reason?: string;
}

/** A message in the spool: its record, how far delivery has come, and its body's size. */
export interface SpooledMessage extends MessageRecord {
  id: string;
  state: DeliveryState;
  size: number;
}

type Area = 'queue' | 'failed';

const ID_PATTERN = /^[0-9A-Z]{9}[0-9A-F]{10}$/;
/** The state of a message nobody has tried yet: what a missing ID.state means. */
const freshState = (envelope: Envelope): DeliveryState => ({ attempts: 0, nextAttemptAt: envelope.receivedAt, delivered: [], refused: [] });

/**
 * Messages on disk, Postfix-style: each lives in queue/ until delivered, or
 * in failed/ once given up on, as ID.msg (record line, then the body; see
 * message-file.ts). A message is written under tmp/, fsync'd, then renamed
 * into queue/: that rename is what makes it exist, so a crash at any point
 * leaves a complete message or debris that is never taken for one.
 *
 * Delivery state goes into a second file, ID.state, only once there is some
 * to keep (a deferral, a refusal, an operator's retry): most messages are
 * delivered on the first attempt and never need it.
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

  /** Removes what a crash left behind: half-written files, locks, and states whose message is gone. */
  async sweep(): Promise<void> {
    for (const name of await readdir(this.tmpDir)) await rm(join(this.tmpDir, name), { force: true });
    for (const area of ['queue', 'failed'] as const) {
      const names = new Set(await readdir(join(this.dir, area)));
      for (const name of names) {
        const orphanState = name.endsWith('.state') && !names.has(name.replace(/\.state$/, '.msg'));
        if (orphanState || name.endsWith('.lock') || name.endsWith('.tmp')) await rm(join(this.dir, area, name), { force: true });
      }
    }
  }

  /**
   * Writes message `id` to disk: `record` heads the file, `body` follows as
   * it streams. The record may settle late (cleanup knows the Message-ID only
   * once it has read the header block) but always before the first body
   * byte. Resolves once the message is durable in queue/.
   */
  async write(id: string, record: Promise<MessageRecord>, body: Readable): Promise<SpooledMessage> {
    const tmp = join(this.tmpDir, `${id}.msg`);
    const file = new MessageFileWriter(
      tmp,
      record.then((r) => JSON.stringify(r)),
    );
    try {
      await pipeline(body, file);
      renameSync(tmp, this.path('queue', id, 'msg'));
    } catch (err) {
      unlinkIfPresent(tmp);
      throw err;
    }
    await syncDirectory(join(this.dir, 'queue'));
    const stored = await record;
    return { id, ...stored, state: freshState(stored.envelope), size: file.bodySize };
  }

  openBody(id: string, area: Area = 'queue'): Readable {
    return new MessageBodyReader(this.path(area, id, 'msg'));
  }

  /** Ids in an area, oldest first (ids sort by arrival). */
  async ids(area: Area = 'queue'): Promise<string[]> {
    const names = await readdir(join(this.dir, area));
    return names
      .filter((name) => name.endsWith('.msg'))
      .map((name) => name.slice(0, -4))
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
      const { record, bodySize } = readRecordLine(this.path(area, id, 'msg'));
      const stored = JSON.parse(record) as MessageRecord;
      const state = readState(this.path(area, id, 'state')) ?? freshState(stored.envelope);
      return { id, ...stored, state, size: bodySize };
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
    if (!existsSync(this.path('queue', message.id, 'msg'))) return false;
    await writeFileDurably(this.path('queue', message.id, 'state'), JSON.stringify(message.state));
    return true;
  }

  /** Removes a message; its file goes first, and a state left behind by a crash is swept as debris. */
  async remove(id: string, area: Area = 'queue'): Promise<void> {
    unlinkIfPresent(this.path(area, id, 'msg'));
    unlinkIfPresent(this.path(area, id, 'state'));
    await syncDirectory(join(this.dir, area));
  }

  /** Moves a message between queue/ and failed/ with its state as given: the state is in place before the message arrives. */
  async move(message: SpooledMessage, from: Area, to: Area): Promise<void> {
    await writeFileDurably(this.path(to, message.id, 'state'), JSON.stringify(message.state));
    renameSync(this.path(from, message.id, 'msg'), this.path(to, message.id, 'msg'));
    unlinkIfPresent(this.path(from, message.id, 'state'));
    await Promise.all([syncDirectory(join(this.dir, to)), syncDirectory(join(this.dir, from))]);
  }

  /**
   * Marks a queued message as being delivered, so the queue tools can refuse
   * to delete it mid-delivery. Returns false if another holder has it. The
   * mark is a second name for the message file: no inode to allocate.
   */
  lock(id: string): boolean {
    try {
      linkSync(this.path('queue', id, 'msg'), this.path('queue', id, 'lock'));
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOENT') return false;
      throw err;
    }
  }

  unlock(id: string): void {
    unlinkIfPresent(this.path('queue', id, 'lock'));
  }

  isLocked(id: string): boolean {
    return existsSync(this.path('queue', id, 'lock'));
  }

  path(area: Area, id: string, kind: 'msg' | 'state' | 'lock'): string {
    return join(this.dir, area, `${id}.${kind}`);
  }
}

/** Sortable by arrival, unique without coordination: milliseconds then random bits. */
export function newQueueId(): string {
  return Date.now().toString(36).toUpperCase().padStart(9, '0') + randomBytes(5).toString('hex').toUpperCase();
}


function readState(file: string): DeliveryState | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DeliveryState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
