import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BridgeEvent } from '../events.js';
import type { Activity } from './activity.js';
import type { BridgeView } from './bridge-view.js';

/**
 * The bridge in Prometheus terms, named after the postfix exporters. Counters
 * move with the stages' events; gauges are read from the bridge when scraped.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly accepted: Counter<'device'>;
  private readonly delivered: Counter<'upstream'>;
  private readonly deferred: Counter<'upstream'>;
  private readonly failed: Counter<'upstream' | 'reason'>;
  private readonly authFailures: Counter<'device' | 'reason'>;
  private readonly refused: Counter<'device' | 'rule'>;
  private readonly tlsSessions: Counter<'version'>;
  private readonly delay: Histogram<'upstream'>;

  constructor(view: BridgeView, activity: Activity) {
    const registers = [this.registry];
    const counter = <Label extends string>(name: string, help: string, labelNames: Label[]) =>
      new Counter<Label>({ name, help, labelNames, registers });
    this.accepted = counter('smtp_bridge_messages_accepted_total', 'Messages accepted from devices (answered 250 after DATA).', ['device']);
    this.delivered = counter('smtp_bridge_delivered_total', 'Messages (or their remaining recipients) an upstream accepted.', ['upstream']);
    this.deferred = counter(
      'smtp_bridge_deferred_total',
      'Delivery attempts that ended in a temporary failure; the message stays queued.',
      ['upstream'],
    );
    this.failed = counter(
      'smtp_bridge_failed_total',
      'Messages moved to the failed area, by reason (bounced: refused for good; expired: too old).',
      ['upstream', 'reason'],
    );
    this.authFailures = counter(
      'smtp_bridge_auth_failures_total',
      'Refused AUTH attempts; device "unknown" when the username matched none.',
      ['device', 'reason'],
    );
    this.refused = counter('smtp_bridge_refused_total', 'Commands refused by a device rule (senders, recipients, limits, frozen, sizes).', [
      'device',
      'rule',
    ]);
    this.tlsSessions = counter('smtp_bridge_tls_sessions_total', 'TLS sessions with devices, by negotiated version.', ['version']);
    this.delay = new Histogram({
      name: 'smtp_bridge_delivery_delay_seconds',
      help: 'Time from acceptance to delivery.',
      labelNames: ['upstream'],
      buckets: [0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 14400, 86400],
      registers,
    });
    new Gauge({
      name: 'smtp_bridge_queue_messages',
      help: 'Messages waiting in the queue.',
      registers,
      async collect() {
        this.set((await view.queue()).count);
      },
    });
    new Gauge({
      name: 'smtp_bridge_queue_oldest_age_seconds',
      help: 'Age of the oldest queued message; 0 when the queue is empty.',
      registers,
      async collect() {
        const { oldestReceivedAt } = await view.queue();
        this.set(oldestReceivedAt === undefined ? 0 : Math.max(0, (Date.now() - oldestReceivedAt) / 1000));
      },
    });
    new Gauge({
      name: 'smtp_bridge_device_frozen',
      help: '1 while a device is frozen (AUTH refused, its queued messages held).',
      labelNames: ['device'],
      registers,
      async collect() {
        const frozen = new Set((await view.frozen()).map((record) => record.device));
        for (const device of view.devices()) this.set({ device }, frozen.has(device) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'smtp_bridge_upstream_up',
      help: '0 while the last delivery attempt to an upstream failed at the upstream itself (connection, TLS, AUTH).',
      labelNames: ['upstream'],
      registers,
      collect() {
        for (const { name } of view.upstreams()) this.set({ upstream: name }, activity.upstreams.get(name)?.failingSince ? 0 : 1);
      },
    });
    new Gauge({
      name: 'smtp_bridge_certificate_expiry_timestamp_seconds',
      help: 'When the listener certificate expires (Unix time).',
      registers,
      collect() {
        const expiry = view.certificateExpiry();
        if (expiry) this.set(expiry.getTime() / 1000);
      },
    });
    // Every known series exists from the start, so rate() and absent() work before the first message.
    for (const device of view.devices()) this.accepted.inc({ device }, 0);
    for (const { name: upstream } of view.upstreams()) {
      this.delivered.inc({ upstream }, 0);
      this.deferred.inc({ upstream }, 0);
    }
  }

  record(event: BridgeEvent): void {
    switch (event.type) {
      case 'tls-session':
        return this.tlsSessions.inc({ version: event.version });
      case 'auth-failed':
        return this.authFailures.inc({ device: event.device ?? 'unknown', reason: event.reason });
      case 'refused':
        return this.refused.inc({ device: event.device, rule: event.rule });
      case 'accepted':
        return this.accepted.inc({ device: event.device });
      case 'delivered':
        this.delivered.inc({ upstream: event.upstream });
        return this.delay.observe({ upstream: event.upstream }, event.delayMs / 1000);
      case 'deferred':
        return this.deferred.inc({ upstream: event.upstream });
      case 'failed':
        return this.failed.inc({ upstream: event.upstream, reason: event.reason });
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
