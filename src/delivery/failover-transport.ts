import type { Readable } from 'node:stream';
import { DeliveryFailure, type Accepted, type Recipients, type Transport } from './transport.js';

/** How long an unreachable upstream goes to the back of the line. */
const REST_MS = 60_000;

/**
 * An upstream with fallbacks: when one cannot take the message for now
 * (unreachable, TLS or AUTH failing, a 4xx), the next one is tried at once.
 * A 5xx refusal of the message itself ends the attempt: another provider
 * saying yes to what one has refused would only hide the problem.
 */
export class FailoverTransport implements Transport {
  /**
   * An upstream that could not be reached is tried last for a while: a
   * provider that swallows connections would otherwise cost every message
   * its connect_timeout before the fallback is asked.
   */
  private readonly restingUntil = new Map<Transport, number>();

  constructor(
    private readonly primary: Transport,
    private readonly fallbacks: Transport[],
  ) {}

  get name(): string {
    return this.primary.name;
  }

  get concurrency(): number {
    return this.primary.concurrency;
  }

  get rate(): Transport['rate'] {
    return this.primary.rate;
  }

  async send(envelope: Recipients, body: () => Readable): Promise<Accepted> {
    const tried: string[] = [];
    let last: DeliveryFailure | undefined;
    let allUnreachable = true;
    for (const transport of this.order()) {
      try {
        const accepted = await transport.send(envelope, body);
        this.restingUntil.delete(transport);
        return transport === this.primary ? accepted : { ...accepted, via: transport.name };
      } catch (err) {
        const failure = err instanceof DeliveryFailure ? err : new DeliveryFailure('temporary', (err as Error).message);
        tried.push(`${transport.name}: ${failure.message}`);
        if (failure.kind === 'permanent') throw new DeliveryFailure('permanent', tried.join('; '), failure.code);
        // A provider at its session limit is busy, not down: the message waits for one of its sessions, and the scheduler learns the limit.
        if (failure.servedSessions) throw failure;
        if (failure.unreachable) this.restingUntil.set(transport, Date.now() + REST_MS);
        last = failure;
        allUnreachable &&= failure.unreachable;
      }
    }
    // The lane backs off only when no upstream at all could be reached.
    throw new DeliveryFailure('temporary', tried.join('; '), last?.code, allUnreachable);
  }

  /** The configured order, with upstreams unreachable a moment ago moved to the end. */
  private order(): Transport[] {
    const now = Date.now();
    const chain = [this.primary, ...this.fallbacks];
    const resting = (transport: Transport) => (this.restingUntil.get(transport) ?? 0) > now;
    return [...chain.filter((transport) => !resting(transport)), ...chain.filter(resting)];
  }

  async close(): Promise<void> {
    await this.primary.close();
  }
}
