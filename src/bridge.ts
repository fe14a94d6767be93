import { X509Certificate } from 'node:crypto';
import { Cleanup } from './cleanup/cleanup.js';
import type { Config } from './config/schema.js';
import { systemClock } from './delivery/clock.js';
import { Scheduler } from './delivery/scheduler.js';
import { DirectoryTransport } from './delivery/directory-transport.js';
import { FailoverTransport } from './delivery/failover-transport.js';
import { oauthAccountSettings } from './delivery/oauth/providers.js';
import { TokenRefresher } from './delivery/oauth/token-refresher.js';
import { SmtpTransport } from './delivery/smtp-transport.js';
import type { Transport } from './delivery/transport.js';
import { loadOrCreateCertificate } from './inbound/certificate.js';
import { Inbound, type RunningListener } from './inbound/listeners.js';
import { deviceTlsOptions, isLegacyTls } from './inbound/tls.js';
import { createIntake } from './intake.js';
import { Alert } from './observe/alert.js';
import { queueSnapshot, type BridgeView, type ListenerState, type QueueSnapshot } from './observe/bridge-view.js';
import type { Logger } from './observe/logger.js';
import { Observer } from './observe/observer.js';
import { openPolicy } from './policy/stage.js';
import { watchKicks } from './spool/signal.js';
import { SpoolStore } from './spool/store.js';
import { collectStreamedMemory } from './spool/stream-memory.js';

export interface RunningBridge {
  listeners: RunningListener[];
  /** The status endpoint's address, when `http` is configured. */
  http?: { host: string; port: number };
  stop(): Promise<void>;
}

/** A scrape or a page view reads the queue a few times; one directory listing a second is plenty. */
const QUEUE_SNAPSHOT_TTL_MS = 1000;

/** Wires the stages together: the only place that knows all of them. */
export async function startBridge(config: Config, logger: Logger): Promise<RunningBridge> {
  collectStreamedMemory();
  const alert = new Alert(config.alert, config.hostname, logger);
  const policy = await openPolicy(config, logger, alert);
  const spool = new SpoolStore(config.spool.dir);
  await spool.init();
  await spool.sweep();

  const certificate = await loadOrCreateCertificate(config.tls.cert_file, config.tls.key_file, config.hostname);
  if (certificate.generated) logger.info({ cert_file: config.tls.cert_file }, 'created a self-signed certificate');
  const certificateExpiry = new Date(new X509Certificate(certificate.cert).validTo);

  // The listeners start last, once everything they hand messages to runs; until then none is up.
  let listenerStates: () => ListenerState[] = () => [];
  let queue: { at: number; snapshot: Promise<QueueSnapshot> } | undefined;
  const view: BridgeView = {
    hostname: config.hostname,
    spoolDir: config.spool.dir,
    devices: () => Object.keys(config.devices),
    upstreams: () =>
      Object.entries(config.upstreams).map(([name, upstream]) => ({
        name,
        type: upstream.type,
        target: upstream.type === 'smtp' ? `${upstream.host}:${upstream.port ?? (upstream.tls === 'implicit' ? 465 : 587)}` : upstream.path,
      })),
    frozen: () => policy.freezes.list(),
    queue: () => {
      if (!queue || Date.now() - queue.at > QUEUE_SNAPSHOT_TTL_MS) queue = { at: Date.now(), snapshot: queueSnapshot(spool) };
      return queue.snapshot;
    },
    listeners: () => listenerStates(),
    certificateExpiry: () => certificateExpiry,
  };
  const observer = new Observer(config, view, alert, logger);

  const accounts = openOAuthAccounts(config, logger, alert);
  const transports = withFallbacks(
    config,
    new Map<string, Transport>(
      Object.entries(config.upstreams).map(([name, upstream]) => [
        name,
        upstream.type === 'directory'
          ? new DirectoryTransport(name, upstream)
          : new SmtpTransport(name, upstream, config.hostname, accounts.get(name)),
      ]),
    ),
  );
  // A frozen device's queued messages are held: the freeze store is the scheduler's DeviceHold.
  const scheduler = new Scheduler(spool, transports, config.delivery, logger, policy.freezes, systemClock, observer.record);
  await scheduler.start();
  const kicks = watchKicks(
    spool.dir,
    () => void scheduler.kicked().catch((err: Error) => logger.error({ err: err.message }, 'spool scan failed')),
  );

  if (isLegacyTls(config.tls.min_version)) {
    logger.warn({ min_version: config.tls.min_version }, 'offering TLS versions below 1.2 to devices, as configured');
  }
  const { ip_failures, username_failures, ipv6_prefix } = config.lockout;
  // Off per client or per username, or IPv6 counted finer than the /64 one host owns: guessing gets cheaper.
  if (ip_failures === 0 || username_failures === 0 || ipv6_prefix > 64) {
    logger.warn({ ip_failures, username_failures, ipv6_prefix }, 'brute-force lockout weakened, as configured');
  }

  const inbound = new Inbound({
    hostname: config.hostname,
    realm: config.sasl_realm,
    listeners: config.listen,
    tls: deviceTlsOptions(certificate, config.tls.min_version),
    greetingDelayMs: config.greeting_delay_ms,
    closeTimeout: config.delivery.shutdown_wait,
    maxMessageSize: config.max_message_size,
    limits: config.limits,
    policy,
    intake: createIntake(spool, new Cleanup(config), scheduler, logger, observer.record),
    logger,
    events: observer.record,
  });
  let listeners: RunningListener[];
  try {
    listeners = await inbound.start();
    listenerStates = () => {
      const up = inbound.listening();
      return listeners.map((listener, index) => ({ ...listener, listening: up[index] ?? false }));
    };
    await observer.start();
  } catch (err) {
    await observer.stop();
    await inbound.stop();
    kicks.close();
    await scheduler.stop();
    await Promise.all([...accounts.values()].map((account) => account.stop()));
    throw err;
  }
  for (const account of accounts.values()) account.startIdleRefresh();

  return {
    listeners,
    http: observer.httpAddress,
    // Sessions and deliveries share one shutdown_wait, so the whole stop is bounded by it (plus a second to record cut-off attempts).
    async stop() {
      kicks.close();
      await observer.stop();
      await Promise.all([inbound.stop(), scheduler.stop()]);
      await Promise.all([...accounts.values()].map((account) => account.stop()));
      logger.info('stopped');
    },
  };
}

/** One token refresher per XOAUTH2 upstream, by upstream name. */
function openOAuthAccounts(config: Config, logger: Logger, alert: Alert): Map<string, TokenRefresher> {
  const accounts = new Map<string, TokenRefresher>();
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    if (upstream.type !== 'smtp' || !upstream.auth.oauth) continue;
    accounts.set(name, new TokenRefresher(oauthAccountSettings(name, upstream.auth.user, upstream.auth.oauth), logger, alert));
  }
  return accounts;
}

/** Puts each upstream's fallbacks behind it; the fallbacks stay reachable under their own names too. */
function withFallbacks(config: Config, transports: Map<string, Transport>): Map<string, Transport> {
  return new Map(
    [...transports].map(([name, transport]) => {
      const upstream = config.upstreams[name];
      const fallback = upstream.type === 'smtp' ? (upstream.fallback ?? []) : [];
      return [
        name,
        fallback.length
          ? new FailoverTransport(
              transport,
              fallback.map((other) => transports.get(other)!),
            )
          : transport,
      ];
    }),
  );
}
