import type { AlertSettings } from '../config/schema.js';
import type { BridgeEvent } from '../events.js';
import type { Logger } from './logger.js';
import type { Activity } from './activity.js';
import type { Alert } from './alert.js';
import type { BridgeView } from './bridge-view.js';
import { hintFor } from './upstream-hints.js';

/** A listener certificate this close to its end is an incident. */
export const CERTIFICATE_WARNING_MS = 14 * 86_400_000;

const iso = (at: number) => new Date(at).toISOString();

/**
 * Turns what the bridge sees into incidents: each fires one alert when it
 * starts and one when it ends, however many messages it touches. Incidents
 * live in memory; one still true after a restart is reported again.
 */
export class AlertConditions {
  /** Upstreams whose "failing" alert went out, with when they started failing. */
  private readonly failingUpstreams = new Map<string, number>();
  /** Upstreams with a failed-message incident open: when it began and how many messages failed since. */
  private readonly failingMessages = new Map<string, { since: number; failed: number }>();
  private queueStuck = false;
  private certificateExpiring = false;
  private timer?: NodeJS.Timeout;
  private checking?: Promise<void>;

  constructor(
    private settings: AlertSettings,
    private alert: Alert,
    private readonly view: BridgeView,
    private readonly activity: Activity,
    private readonly certFile: string,
    private readonly logger: Logger,
  ) {}

  /** Checks the time-based conditions often enough to notice each within a fraction of its threshold. */
  start(): void {
    const every = Math.min(30_000, Math.max(500, Math.min(this.settings.upstream_failing_after, this.settings.queue_age) / 4));
    this.timer = setInterval(() => void this.check(), every);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** After a reload: new thresholds and ways to alert; open incidents stay open, so nothing is said twice. */
  reconfigure(settings: AlertSettings, alert: Alert): void {
    this.settings = settings;
    this.alert = alert;
    this.stop();
    this.start();
  }

  /** Called for every stage event, after Activity has recorded it. */
  record(event: BridgeEvent): void {
    switch (event.type) {
      case 'failed': {
        const open = this.failingMessages.get(event.upstream);
        if (open) {
          open.failed++;
          return;
        }
        this.failingMessages.set(event.upstream, { since: Date.now(), failed: 1 });
        const { device, upstream, queueId, reason, response } = event;
        return this.alert.send({ event: 'message-failed', queue_id: queueId, device, upstream, reason, detail: response });
      }
      case 'delivered': {
        const open = this.failingMessages.get(event.upstream);
        if (!open) return;
        this.failingMessages.delete(event.upstream);
        return this.alert.send({
          event: 'messages-delivered-again',
          upstream: event.upstream,
          failed: open.failed,
          since: iso(open.since),
        });
      }
      case 'upstream-ok':
      case 'upstream-error':
        return this.checkUpstreams();
    }
  }

  /** Runs the checks once; overlapping calls share the run in progress. */
  check(): Promise<void> {
    this.checking ??= this.runChecks().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async runChecks(): Promise<void> {
    this.checkUpstreams();
    this.checkCertificate();
    try {
      await this.checkQueue();
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'queue check failed');
    }
  }

  private checkUpstreams(): void {
    const now = Date.now();
    for (const [name, state] of this.activity.upstreams) {
      const alerted = this.failingUpstreams.get(name);
      if (state.failingSince !== undefined && alerted === undefined && now - state.failingSince >= this.settings.upstream_failing_after) {
        this.failingUpstreams.set(name, state.failingSince);
        const error = state.lastError?.response ?? 'unknown error';
        this.alert.send({ event: 'upstream-failing', upstream: name, since: iso(state.failingSince), error, hint: hintFor(error) });
      } else if (state.failingSince === undefined && alerted !== undefined) {
        this.failingUpstreams.delete(name);
        this.alert.send({ event: 'upstream-recovered', upstream: name, since: iso(alerted) });
      }
    }
  }

  private async checkQueue(): Promise<void> {
    const { count, oldestReceivedAt } = await this.view.queue();
    const stuck = oldestReceivedAt !== undefined && Date.now() - oldestReceivedAt >= this.settings.queue_age;
    if (stuck === this.queueStuck) return;
    this.queueStuck = stuck;
    this.alert.send(
      stuck
        ? { event: 'queue-stuck', messages: count, oldest_received_at: iso(oldestReceivedAt!) }
        : { event: 'queue-moving', messages: count },
    );
  }

  private checkCertificate(): void {
    const expiry = this.view.certificateExpiry();
    if (!expiry) return;
    const expiring = expiry.getTime() - Date.now() < CERTIFICATE_WARNING_MS;
    if (expiring === this.certificateExpiring) return;
    this.certificateExpiring = expiring;
    const fields = { cert_file: this.certFile, expires_at: expiry.toISOString() };
    this.alert.send(expiring ? { event: 'certificate-expiring', ...fields } : { event: 'certificate-renewed', ...fields });
  }
}
