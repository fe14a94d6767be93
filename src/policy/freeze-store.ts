import { readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeFileDurably, writeFileDurably } from '../spool/durable-file.js';

/** Why and when a device was frozen, as kept on disk and shown by `device list`. */
export interface FreezeRecord {
  device: string;
  frozen_at: string;
  reason: string;
  client_ip?: string;
  sasl_username?: string;
}

/** A change younger than this may share its directory timestamp with our last read (see refresh()). */
const RACY_MS = 1000;

/** The scheduler asks for every waiting message; the directory is looked at no more often than this. */
const CHECK_INTERVAL_MS = 200;

/**
 * Frozen devices, one file each under spool/state/frozen/. A freeze survives
 * restarts, and `smtp-bridge device unfreeze` clears it by removing the file:
 * no socket to the server and no read-modify-write race between the two
 * processes. The server notices a removal within CHECK_INTERVAL_MS, at the
 * cost of one stat() of the directory unless something changed.
 */
export class FreezeStore {
  readonly dir: string;
  private frozen = new Set<string>();
  /** Freezes decided in this process whose file is not written yet (or could not be): they hold regardless of the directory. */
  private readonly pending = new Set<string>();
  private stamp?: string;
  private racy = true;
  private checkedAt = 0;

  constructor(spoolDir: string) {
    this.dir = join(spoolDir, 'state', 'frozen');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  isFrozen(device: string): boolean {
    this.refresh();
    return this.pending.has(device) || this.frozen.has(device);
  }

  /** DeviceHold for the delivery scheduler: a frozen device's queued messages wait, neither sent nor deleted. */
  isHeld(device: string): boolean {
    return this.isFrozen(device);
  }

  /** Freezes at once in this process; resolves once the freeze is durable (and rejects if it cannot be made so). */
  async freeze(record: FreezeRecord): Promise<void> {
    this.pending.add(record.device);
    await writeFileDurably(this.fileOf(record.device), `${JSON.stringify(record, null, 2)}\n`);
    this.frozen.add(record.device);
    this.pending.delete(record.device);
  }

  /** Clears a freeze; false if the device was not frozen. */
  async unfreeze(device: string): Promise<boolean> {
    const removed = await removeFileDurably(this.fileOf(device));
    this.frozen.delete(device);
    return removed;
  }

  async list(): Promise<FreezeRecord[]> {
    const records = await Promise.all(
      (await readdir(this.dir).catch(() => [])).filter(isRecordFile).map(async (name) => {
        try {
          return JSON.parse(await readFile(join(this.dir, name), 'utf8')) as FreezeRecord;
        } catch {
          // Removed by an unfreeze meanwhile, or unreadable: the device is still frozen by its file name.
          return { device: deviceOf(name), frozen_at: '', reason: 'unknown (state file unreadable)' };
        }
      }),
    );
    return records.sort((a, b) => a.device.localeCompare(b.device));
  }

  /**
   * Re-reads the directory when its stamp changed. File systems stamp
   * directories with a coarse clock, so a change in the same tick as our last
   * read would leave the stamp as it was: like git with its index, a stamp
   * younger than RACY_MS is not trusted, and the next check reads again.
   */
  private refresh(): void {
    const now = Date.now();
    if (now - this.checkedAt < CHECK_INTERVAL_MS) return;
    this.checkedAt = now;
    try {
      const stats = statSync(this.dir, { bigint: true });
      const stamp = `${stats.ino}:${stats.mtimeNs}:${stats.ctimeNs}`;
      if (stamp === this.stamp && !this.racy) return;
      this.frozen = new Set(readdirSync(this.dir).filter(isRecordFile).map(deviceOf));
      this.stamp = stamp;
      this.racy = now - Number(stats.mtimeMs) < RACY_MS;
    } catch (err) {
      // Without its directory nothing is frozen; any other failure keeps what was last known.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.frozen.clear();
    }
  }

  private fileOf(device: string): string {
    // Any YAML key is a device name; encoding keeps "..", "/" and friends out of the path.
    return join(this.dir, `${encodeURIComponent(device).replace(/\./g, '%2E')}.json`);
  }
}

const isRecordFile = (name: string) => name.endsWith('.json') && !name.startsWith('.');

const deviceOf = (name: string) => decodeURIComponent(name.slice(0, -'.json'.length));
