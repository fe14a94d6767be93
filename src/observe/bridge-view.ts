import type { FreezeRecord } from '../policy/freeze-store.js';
import type { SpoolStore } from '../spool/store.js';

/** A listener as the health check sees it. */
export interface ListenerState {
  address: string;
  port: number;
  tls: string;
  listening: boolean;
}

export interface UpstreamSummary {
  name: string;
  /** host:port for SMTP providers, the path for capture directories. */
  target: string;
  type: 'smtp' | 'directory';
}

/** A message in the failed area, as the status page lists it. */
export interface FailedMessage {
  id: string;
  device: string;
  upstream: string;
  failedAt?: number;
  reason?: string;
}

export interface QueueSnapshot {
  count: number;
  oldestReceivedAt?: number;
  failedCount: number;
  /** The newest arrivals in the failed area, newest first. */
  latestFailed: FailedMessage[];
}

/** How many failed messages the status page lists. */
const LATEST_FAILED = 5;

/**
 * What observe reads from the running bridge when someone asks: names from
 * the config, freezes and the queue from disk. bridge.ts builds it.
 */
export interface BridgeView {
  hostname: string;
  spoolDir: string;
  devices(): string[];
  upstreams(): UpstreamSummary[];
  frozen(): Promise<FreezeRecord[]>;
  queue(): Promise<QueueSnapshot>;
  listeners(): ListenerState[];
  /** When the listener certificate stops being valid. */
  certificateExpiry(): Date | undefined;
}

/** Count and age of the queue and the latest failures: ids sort by arrival, so only a few messages are read. */
export async function queueSnapshot(spool: SpoolStore): Promise<QueueSnapshot> {
  const [queued, failed] = await Promise.all([spool.ids('queue'), spool.ids('failed')]);
  let oldestReceivedAt: number | undefined;
  for (const id of queued) {
    // The oldest may be delivered between the listing and the read: then the next one is the oldest.
    const message = await spool.read(id);
    if (!message) continue;
    oldestReceivedAt = Date.parse(message.envelope.receivedAt);
    break;
  }
  const latest = await Promise.all(
    failed
      .slice(-LATEST_FAILED)
      .reverse()
      .map((id) => spool.read(id, 'failed')),
  );
  const latestFailed = latest.flatMap((message) =>
    message
      ? [
          {
            id: message.id,
            device: message.conn.device,
            upstream: message.envelope.upstream,
            failedAt: message.state.failedAt ? Date.parse(message.state.failedAt) : undefined,
            reason: message.state.reason,
          },
        ]
      : [],
  );
  return { count: queued.length, oldestReceivedAt, failedCount: failed.length, latestFailed };
}
