import type { Logger } from '../observe/logger.js';
import type { SpooledMessage, SpoolStore } from '../spool/store.js';
import { DeliveryFailure, type Accepted, type Transport } from './transport.js';

export type DeliveryOutcome = { status: 'delivered'; result: Accepted } | { status: 'failed'; failure: DeliveryFailure };

/** Takes spooled messages to their device's upstream and logs the provider's verdict. */
export class Dispatcher {
  constructor(
    private readonly transports: ReadonlyMap<string, Transport>,
    private readonly spool: SpoolStore,
    private readonly logger: Logger,
  ) {}

  async deliver(message: SpooledMessage): Promise<DeliveryOutcome> {
    const { envelope } = message;
    const transport = this.transports.get(envelope.upstream);
    const context = { queue_id: message.id, device: envelope.device, client_ip: envelope.clientIp, upstream: envelope.upstream, attempt: 1 };
    const started = Date.now();
    let outcome: DeliveryOutcome;
    try {
      if (!transport) throw new DeliveryFailure('temporary', `no upstream named ${envelope.upstream}`);
      const result = await transport.send({ from: envelope.from, to: envelope.to }, this.spool.openBody(message.id));
      outcome = { status: 'delivered', result };
      this.logger.info({ ...context, response: result.response, delay_ms: Date.now() - started }, 'delivered');
      for (const refusal of result.refused) {
        this.logger.warn({ ...context, to: refusal.address, response: refusal.response }, 'recipient refused by upstream');
      }
    } catch (err) {
      const failure = err instanceof DeliveryFailure ? err : new DeliveryFailure('temporary', (err as Error).message);
      outcome = { status: 'failed', failure };
      this.logger.warn({ ...context, response: failure.message, kind: failure.kind, delay_ms: Date.now() - started }, 'delivery failed');
    }
    await this.spool.remove(message.id);
    return outcome;
  }
}
