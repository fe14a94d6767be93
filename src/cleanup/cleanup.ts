import type { Transform } from 'node:stream';
import type { Config } from '../config/schema.js';
import { CrlfNormalizer } from './crlf.js';
import { HeaderCleanup } from './header-cleanup.js';
import { receivedHeader } from './received.js';

/** What cleanup needs to know about a message as it arrives. */
export interface ArrivalFacts {
  device: string;
  from: string;
  helo?: string;
  esmtp: boolean;
  clientIp: string;
  tls?: string;
  cipher?: string;
  saslMethod?: string;
}

export interface CleanupFilters {
  /** Stream filters, in order, between the device's DATA and the spool file. */
  filters: Transform[];
  /** The message's Message-ID once the filters have run. */
  messageId(): string | undefined;
}

/**
 * The cleanup stage (Postfix's name): turns what a device sent into what may
 * go to a provider. Line ends become CRLF, trace and missing headers are
 * added, and per device the sender is rewritten to the provider account.
 */
export class Cleanup {
  constructor(private readonly config: Pick<Config, 'hostname' | 'devices' | 'upstreams'>) {}

  /** The envelope sender the provider will see. */
  sender(facts: ArrivalFacts): string {
    return this.replacement(facts.device, 'rewrite_sender') ?? facts.from;
  }

  filters(facts: ArrivalFacts, queueId: string, date: Date): CleanupFilters {
    const headers = new HeaderCleanup({
      received: receivedHeader({ ...facts, hostname: this.config.hostname, queueId, date }),
      date,
      generatedMessageId: `<${queueId}@${this.config.hostname}>`,
      fromAddress: this.replacement(facts.device, 'rewrite_from'),
    });
    return { filters: [new CrlfNormalizer(), headers], messageId: () => headers.messageId };
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
