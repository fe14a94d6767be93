import type { Config } from '../config/schema.js';
import type { BridgeEvent } from '../events.js';
import { Activity } from './activity.js';
import { AlertConditions } from './alert-conditions.js';
import type { Alert } from './alert.js';
import type { BridgeView } from './bridge-view.js';
import { Health } from './health.js';
import { startHttpServer, type RunningHttp } from './http-server.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { renderStatusPage } from './status-page.js';

/**
 * Everything that watches the bridge: the stages' events go to `record`,
 * and from there to the status page's history, the metrics and the alert
 * conditions. The HTTP endpoint and the alert checks run between start and stop.
 */
export class Observer {
  readonly activity = new Activity();
  readonly metrics: Metrics;
  readonly health: Health;
  private conditions?: AlertConditions;
  private http?: RunningHttp;
  private started = false;

  constructor(
    private config: Config,
    private readonly view: BridgeView,
    alert: Alert,
    private readonly logger: Logger,
  ) {
    this.metrics = new Metrics(view, this.activity);
    this.health = new Health(view, this.activity, () => this.config.upstreams);
    this.conditions = this.conditionsFor(config, alert);
  }

  /** After a reload: upstreams and alert settings from `config`; the HTTP endpoint stays as started. */
  reload(config: Config, alert: Alert): void {
    this.config = config;
    if (config.alert && this.conditions) this.conditions.reconfigure(config.alert, alert);
    else {
      this.conditions?.stop();
      this.conditions = this.conditionsFor(config, alert);
      if (this.started) this.conditions?.start();
    }
  }

  private conditionsFor(config: Config, alert: Alert): AlertConditions | undefined {
    return config.alert && new AlertConditions(config.alert, alert, this.view, this.activity, config.tls.cert_file, this.logger);
  }

  /** The stages' EventSink. A failure in here is logged and never reaches the stage that reported. */
  readonly record = (event: BridgeEvent): void => {
    try {
      this.activity.record(event);
      this.metrics.record(event);
      this.conditions?.record(event);
    } catch (err) {
      this.logger.error({ event: event.type, err: (err as Error).message }, 'observer failed on an event');
    }
  };

  /** The HTTP endpoint's address, once started (for tests and the start-up message). */
  get httpAddress(): { host: string; port: number } | undefined {
    return this.http && { host: this.http.host, port: this.http.port };
  }

  async start(): Promise<void> {
    this.started = true;
    this.conditions?.start();
    if (!this.config.http) return;
    this.http = await startHttpServer(
      this.config.http,
      {
        status: () => renderStatusPage(this.view, this.activity),
        metrics: async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.text() }),
        live: () => this.health.live(),
        ready: () => this.health.ready(),
      },
      this.logger,
    );
  }

  async stop(): Promise<void> {
    this.conditions?.stop();
    await this.http?.close();
  }
}
