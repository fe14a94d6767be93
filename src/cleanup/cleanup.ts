import { pipeline, type Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Arrival, Envelope, MessageRecord } from '../message.js';
import { CrlfNormalizer } from './crlf.js';
import { HeaderCleanup } from './header-cleanup.js';
import { receivedHeader } from './received.js';

/** Where cleanup writes the queue file: the spool, seen only through this. */
export interface QueueWriter<Stored> {
  /** `record` settles before the first byte of `body` flows. */
  write(id: string, record: Promise<MessageRecord>, body: Readable): Promise<Stored>;
}

/**
 * The cleanup stage (Postfix's name): turns what a device sent into what may
 * go to a provider, and writes it to the queue. Line ends become CRLF, trace
 * and missing headers are added, and per device the sender is rewritten to
 * the provider account.
 */
export class Cleanup {
  constructor(private readonly config: Pick<Config, 'hostname' | 'devices' | 'upstreams'>) {}

  /** Streams the device's DATA through cleanup into queue file `id`, headed by the record the spool keeps. */
  enqueue<Stored>(id: string, arrival: Arrival, body: Readable, queue: QueueWriter<Stored>): Promise<Stored> {
    const { conn } = arrival;
    const date = new Date(arrival.envelope.receivedAt);
    const envelope: Envelope = { ...arrival.envelope, sender: this.sender(arrival) };
    const headers = new HeaderCleanup({
      received: receivedHeader({ ...conn, hostname: this.config.hostname, queueId: id, date }),
      date,
      generatedMessageId: `<${id}@${this.config.hostname}>`,
      fromAddress: this.replacement(conn.device, 'rewrite_from'),
    });
    const record = headers.messageId.then((messageId): MessageRecord => ({ conn, envelope, messageId }));
    // A device that goes away mid-DATA destroys the whole chain, so the queue writer sees the error too.
    const cleaned = pipeline(body, new CrlfNormalizer(), headers, () => undefined);
    return queue.write(id, record, cleaned);
  }

  private sender({ conn, envelope }: Arrival): string {
    return this.replacement(conn.device, 'rewrite_sender') ?? envelope.originalFrom;
  }

  private replacement(deviceName: string, key: 'rewrite_sender' | 'rewrite_from'): string | undefined {
    const device = this.config.devices[deviceName];
    const setting = device?.[key];
    if (typeof setting === 'string') return setting;
    if (setting !== true) return undefined;
    const upstream = this.config.upstreams[device.upstream];
    return upstream?.type === 'smtp' ? upstream.auth.user : undefined;
  }
}
