import type { Config } from './config/schema.js';
import { Dispatcher } from './delivery/dispatcher.js';
import { DirectoryTransport } from './delivery/directory-transport.js';
import { SmtpTransport } from './delivery/smtp-transport.js';
import type { Transport } from './delivery/transport.js';
import { loadOrCreateCertificate } from './inbound/certificate.js';
import { Inbound, type RunningListener } from './inbound/listeners.js';
import { deviceTlsOptions, isLegacyTls } from './inbound/tls.js';
import { createIntake } from './intake.js';
import type { Logger } from './observe/logger.js';
import { DeviceDirectory } from './policy/devices.js';
import { SpoolStore } from './spool/store.js';

export interface RunningBridge {
  listeners: RunningListener[];
  stop(): Promise<void>;
}

/** Wires the stages together: the only place that knows all of them. */
export async function startBridge(config: Config, logger: Logger): Promise<RunningBridge> {
  const devices = new DeviceDirectory(config.devices);
  const spool = new SpoolStore(config.spool.dir);
  await spool.init();

  const transports = new Map<string, Transport>(
    Object.entries(config.upstreams).map(([name, upstream]) => [
      name,
      upstream.type === 'directory' ? new DirectoryTransport(name, upstream) : new SmtpTransport(name, upstream, config.hostname),
    ]),
  );
  const dispatcher = new Dispatcher(transports, spool, logger);

  const certificate = await loadOrCreateCertificate(config.tls.cert_file, config.tls.key_file, config.hostname);
  if (certificate.generated) logger.info({ cert_file: config.tls.cert_file }, 'created a self-signed certificate');
  if (isLegacyTls(config.tls.min_version)) {
    logger.warn({ min_version: config.tls.min_version }, 'offering TLS versions below 1.2 to devices, as configured');
  }

  const inbound = new Inbound({
    hostname: config.hostname,
    listeners: config.listen,
    tls: deviceTlsOptions(certificate, config.tls.min_version),
    greetingDelayMs: config.greeting_delay_ms,
    maxMessageSize: config.max_message_size,
    devices,
    intake: createIntake(spool, dispatcher, logger),
    logger,
  });
  const listeners = await inbound.start().catch(async (err: Error) => {
    await inbound.stop();
    throw err;
  });

  return {
    listeners,
    async stop() {
      await inbound.stop();
      logger.info('stopped');
    },
  };
}
