import type { SecureContextOptions } from 'node:tls';
import type { LimitSettings, Listener } from '../config/schema.js';
import type { EventSink } from '../events.js';
import type { Logger } from '../observe/logger.js';
import type { PolicyStage } from '../policy/stage.js';
import { BridgeServer } from './connection.js';
import { ConnectionLimits } from './connection-limits.js';
import { warnIfOpenFilesTooFew } from './open-file-limit.js';
import { createSessionHandlers } from './session.js';
import type { Intake } from './submission.js';

export interface InboundOptions {
  hostname: string;
  /** The realm DIGEST-MD5 offers. */
  realm: string;
  listeners: Listener[];
  tls: SecureContextOptions;
  greetingDelayMs: number;
  /** How long stop() lets open sessions finish before closing them with 421. */
  closeTimeout: number;
  maxMessageSize: number;
  limits: LimitSettings;
  policy: PolicyStage;
  intake: Intake;
  logger: Logger;
  events: EventSink;
}

/** What smtp-server's errors carry beside the message. */
type ConnectionError = NodeJS.ErrnoException & { remoteAddress?: string; meta?: { remoteAddress?: string } };

export interface RunningListener {
  address: string;
  port: number;
  tls: Listener['tls'];
}

/** The device-facing side: one smtp-server per configured listener. */
export class Inbound {
  private readonly servers: BridgeServer[] = [];

  constructor(private readonly options: InboundOptions) {}

  async start(): Promise<RunningListener[]> {
    const { policy, logger } = this.options;
    const { hooks: handlers, deviceOf } = createSessionHandlers({
      policy,
      intake: this.options.intake,
      logger,
      maxMessageSize: this.options.maxMessageSize,
      events: this.options.events,
    });
    const { limits } = this.options;
    const connections = new ConnectionLimits(limits, logger);
    await warnIfOpenFilesTooFew(limits.max_connections, logger);
    for (const device of policy.devices.all) {
      if (device.allowBareLfDot)
        logger.warn(
          { device: device.name },
          'device may end DATA with a bare-LF "." (allow_bare_lf_dot): SMTP smuggling protection is off for its sessions',
        );
    }
    const mechanisms = policy.devices.mechanisms;
    const running: RunningListener[] = [];
    for (const listener of this.options.listeners) {
      const server = new BridgeServer(
        {
          ...this.options.tls,
          ...handlers,
          name: this.options.hostname,
          banner: 'smtp-bridge',
          secure: listener.tls === 'implicit',
          hideSTARTTLS: listener.tls !== 'starttls',
          disabledCommands: [...(listener.tls === 'starttls' ? [] : ['STARTTLS']), ...(mechanisms.length ? [] : ['AUTH'])],
          authMethods: mechanisms,
          // Devices without AUTH exist; who must authenticate is decided per device in onMailFrom.
          authOptional: true,
          // Cleartext AUTH is gated per listener by BridgeConnection, which also covers listeners without STARTTLS.
          allowInsecureAuth: true,
          size: this.options.maxMessageSize,
          rejectOversized: true,
          disableReverseLookup: true,
          closeTimeout: this.options.closeTimeout,
          hideENHANCEDSTATUSCODES: false,
          logger: false,
        },
        {
          greetingDelayMs: this.options.greetingDelayMs,
          // Cleartext AUTH needs both the listener's and a device's consent, and the client in that device's networks.
          allowCleartextAuth: listener.allow_cleartext_auth ? (clientIp) => policy.devices.allowsCleartextAuthFrom(clientIp) : () => false,
          authEquals: listener.auth_equals,
          realm: this.options.realm,
          authenticate: handlers.onAuth,
          allowsBareLfDot: (session) => deviceOf(session)?.allowBareLfDot ?? false,
          limits,
          connections,
          logger,
        },
      );
      const reported = new WeakSet<Error>();
      server.on('error', (err: ConnectionError) => {
        // A failed listen is start()'s own error below; a failed STARTTLS handshake arrives twice (error and _tlsError).
        if (err.syscall === 'listen' || reported.has(err)) return;
        reported.add(err);
        if (err.code === 'EMFILE' || err.code === 'ENFILE')
          return logger.error({ port: listener.port, code: err.code }, 'cannot accept connections: out of file descriptors');
        // smtp-server puts the client's address on the error itself, or for an implicit-TLS handshake in its meta.
        const clientIp = err.remoteAddress ?? err.meta?.remoteAddress;
        logger.warn({ client_ip: clientIp, port: listener.port, err: err.message, code: err.code }, 'connection error');
      });
      await new Promise<void>((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException) =>
          reject(
            new Error(
              `cannot listen on ${listener.address}:${listener.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`,
            ),
          );
        server.server.once('error', onError);
        server.listen({ port: listener.port, host: listener.address }, () => {
          server.server.off('error', onError);
          resolve();
        });
      });
      this.servers.push(server);
      const address = server.server.address();
      const port = typeof address === 'object' && address ? address.port : listener.port;
      running.push({ address: listener.address, port, tls: listener.tls });
      const fields = {
        address: listener.address,
        port,
        tls: listener.tls,
        min_version: this.options.tls.minVersion,
        cleartext_auth: listener.allow_cleartext_auth,
      };
      if (listener.allow_cleartext_auth)
        logger.warn(
          fields,
          'listener allows AUTH without TLS to devices with allow_cleartext_auth: their passwords cross the LAN in the clear',
        );
      else logger.info(fields, 'listening');
    }
    return running;
  }

  /**
   * After a reload: EHLO offers the mechanisms of the devices now in the
   * policy, and new TLS sessions get `tls` (the certificate as now on disk).
   * Open sessions keep what they negotiated.
   */
  refresh(tls: SecureContextOptions): void {
    const mechanisms = this.options.policy.devices.mechanisms;
    for (const server of this.servers) {
      server.options.authMethods = mechanisms;
      const others = server.options.disabledCommands.filter((command) => command !== 'AUTH');
      server.options.disabledCommands = mechanisms.length ? others : [...others, 'AUTH'];
      server.updateSecureContext(tls);
    }
  }

  /** Whether each started listener still accepts connections, in start order. */
  listening(): boolean[] {
    return this.servers.map((server) => server.server.listening);
  }

  /** Stops accepting, lets sessions finish (up to closeTimeout), then closes what is left. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    for (const server of this.servers) server.destroySockets();
    this.servers.length = 0;
  }
}
