import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { isDeepStrictEqual } from 'node:util';
import { Cleanup } from './cleanup/cleanup.js';
import { keysNeedingRestart } from './config/restart-keys.js';
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
import { openPolicy, reloadPolicy } from './policy/stage.js';
import { watchKicks } from './spool/signal.js';
import { SpoolStore } from './spool/store.js';
import { collectStreamedMemory } from './spool/stream-memory.js';

export interface RunningBridge {
  listeners: RunningListener[];
  /** The status endpoint's address, when `http` is configured. */
  http?: { host: string; port: number };
  /**
   * Takes a new config for the sessions and deliveries that follow: devices,
   * upstreams, policy, limits, delivery and alert settings, and the
   * certificate files' current content. Open sessions and the queue are
   * untouched; settings that need a restart keep their running values and
   * are logged.
   */
  reload(next: Config): Promise<void>;
  stop(): Promise<void>;
}

/** A scrape or a page view reads the queue a few times; one directory listing a second is plenty. */
const QUEUE_SNAPSHOT_TTL_MS = 1000;

/** Wires the stages together: the only place that knows all of them. */
export async function startBridge(initial: Config, logger: Logger): Promise<RunningBridge> {
  collectStreamedMemory();
  // What a reload may change is read through `config` at each use; the rest keeps its start-up value.
  let config = initial;
  const alert = new Alert(config.alert, config.hostname, logger);
  const policy = await openPolicy(config, logger, alert);
  const spool = new SpoolStore(config.spool.dir);
  await spool.init();
  await spool.sweep();

  let certificate = await loadOrCreateCertificate(config.tls.cert_file, config.tls.key_file, config.hostname);
  if (certificate.generated) logger.info({ cert_file: config.tls.cert_file }, 'created a self-signed certificate');
  const expiryOf = (cert: Buffer) => new Date(new X509Certificate(cert).validTo);
  let certificateExpiry = expiryOf(certificate.cert);

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

  let accounts = openOAuthAccounts(config, logger, alert);
  // The scheduler keeps this map and this settings object: a reload changes their contents.
  const transports = openTransports(config, accounts);
  const delivery = { ...config.delivery };
  // A frozen device's queued messages are held: the freeze store is the scheduler's DeviceHold.
  const scheduler = new Scheduler(spool, transports, delivery, logger, policy.freezes, systemClock, observer.record);
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

  let cleanup = new Cleanup(config);
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
    intake: createIntake(spool, () => cleanup, scheduler, logger, observer.record),
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

  async function reload(next: Config): Promise<void> {
    const restart = keysNeedingRestart(config, next);
    // The running values of those keys stay, so everything below sees one consistent config.
    const running: Config = { ...next, ...Object.fromEntries(restart.map((key) => [key, config[key]])) };
    // The certificate files are read and tried first: if they are broken, nothing has changed yet.
    const fresh = await loadOrCreateCertificate(running.tls.cert_file, running.tls.key_file, running.hostname);
    const tlsOptions = deviceTlsOptions(fresh, running.tls.min_version);
    createSecureContext(tlsOptions);
    const previous = config;
    config = running;
    const reloadedAlert = new Alert(running.alert, running.hostname, logger);
    reloadPolicy(policy, previous, running, logger, reloadedAlert);
    cleanup = new Cleanup(running);
    Object.assign(delivery, running.delivery);
    if (!isDeepStrictEqual(previous.upstreams, running.upstreams) || !isDeepStrictEqual(previous.alert, running.alert)) {
      // Upstreams are rebuilt whole: fallbacks and token refreshers refer to each other by name.
      const old = { accounts, transports: [...new Set(transports.values())] };
      accounts = openOAuthAccounts(running, logger, reloadedAlert);
      transports.clear();
      for (const [name, transport] of openTransports(running, accounts)) transports.set(name, transport);
      for (const account of old.accounts.values()) account.stop();
      for (const transport of old.transports) void transport.close();
      for (const account of accounts.values()) account.startIdleRefresh();
    }
    const certificateChanged = !fresh.cert.equals(certificate.cert) || !fresh.key.equals(certificate.key);
    certificate = fresh;
    certificateExpiry = expiryOf(fresh.cert);
    inbound.refresh(tlsOptions);
    observer.reload(running, reloadedAlert);
    await scheduler.kicked();
    if (restart.length) logger.warn({ keys: restart }, 'config reloaded, but these changes need a restart: running values kept');
    logger.info(
      {
        devices: Object.keys(running.devices).length,
        upstreams: Object.keys(running.upstreams).length,
        certificate_changed: certificateChanged,
      },
      'config reloaded',
    );
  }

  return {
    listeners,
    http: observer.httpAddress,
    reload,
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

/** Every upstream's transport, by name, with its fallbacks behind it. */
function openTransports(config: Config, accounts: Map<string, TokenRefresher>): Map<string, Transport> {
  return withFallbacks(
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
