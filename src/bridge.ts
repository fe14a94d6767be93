import { Cleanup } from './cleanup/cleanup.js';
import type { Config } from './config/schema.js';
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
import type { Logger } from './observe/logger.js';
import { openPolicy } from './policy/stage.js';
import { watchKicks } from './spool/signal.js';
import { SpoolStore } from './spool/store.js';
import { collectStreamedMemory } from './spool/stream-memory.js';

export interface RunningBridge {
  listeners: RunningListener[];
  stop(): Promise<void>;
}

/** Wires the stages together: the only place that knows all of them. */
export async function startBridge(config: Config, logger: Logger): Promise<RunningBridge> {
  collectStreamedMemory();
  const policy = await openPolicy(config, logger);
  const spool = new SpoolStore(config.spool.dir);
  await spool.init();
  await spool.sweep();

  const accounts = openOAuthAccounts(config, logger);
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
  const scheduler = new Scheduler(spool, transports, config.delivery, logger, policy.freezes);
  await scheduler.start();
  const kicks = watchKicks(
    spool.dir,
    () => void scheduler.kicked().catch((err: Error) => logger.error({ err: err.message }, 'spool scan failed')),
  );

  const certificate = await loadOrCreateCertificate(config.tls.cert_file, config.tls.key_file, config.hostname);
  if (certificate.generated) logger.info({ cert_file: config.tls.cert_file }, 'created a self-signed certificate');
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
    intake: createIntake(spool, new Cleanup(config), scheduler, logger),
    logger,
  });
  const listeners = await inbound.start().catch(async (err: Error) => {
    await inbound.stop();
    kicks.close();
    await scheduler.stop();
    await Promise.all([...accounts.values()].map((account) => account.stop()));
    throw err;
  });
  for (const account of accounts.values()) account.startIdleRefresh();

  return {
    listeners,
    // Sessions and deliveries share one shutdown_wait, so the whole stop is bounded by it (plus a second to record cut-off attempts).
    async stop() {
      kicks.close();
      await Promise.all([inbound.stop(), scheduler.stop()]);
      await Promise.all([...accounts.values()].map((account) => account.stop()));
      logger.info('stopped');
    },
  };
}

/** One token refresher per XOAUTH2 upstream, by upstream name. */
function openOAuthAccounts(config: Config, logger: Logger): Map<string, TokenRefresher> {
  const alert = new Alert(config.alert, config.hostname, logger);
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
