import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.js';
import { startBridge } from '../bridge.js';
import { createLogger, type LogFormat } from '../observe/logger.js';
import { CONFIG_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand, UsageError } from './args.js';
import { removePidFile, writePidFile } from './pid-file.js';

const HELP = `usage: smtp-bridge serve [-c FILE] [--log-format auto|json|pretty]

Runs the bridge until SIGINT or SIGTERM. SIGHUP (or "smtp-bridge reload")
re-reads the config file; an invalid one is logged and the running config kept.

options:
  -c, --config FILE      config file (default ${DEFAULT_CONFIG})
      --log-format FMT   json (one JSON line per event), pretty (readable lines),
                         or auto (pretty on a terminal, JSON otherwise);
                         overrides the config's log.format
  -h, --help             show this help`;

const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseCommandArgs(argv, { ...CONFIG_OPTION, 'log-format': { type: 'string' } }, HELP);
    const format = values['log-format'];
    if (format !== undefined && !(LOG_FORMATS as readonly string[]).includes(format)) {
      throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(', ')}`);
    }
    const loaded = await loadConfig(values.config!, { createMissingPasswords: true });
    const { config } = loaded;
    const logger = createLogger(config.log.level, undefined, (format as LogFormat | undefined) ?? config.log.format);
    for (const warning of loaded.warnings) logger.warn({ config: loaded.file }, warning);
    printGenerated(loaded);
    const bridge = await startBridge(config, logger);
    const usernames = Object.entries(config.devices).map(([name, device]) => device.username ?? name);
    for (const listener of bridge.listeners) {
      const where = listener.address === '0.0.0.0' || listener.address === '::' ? 'this-host' : listener.address;
      console.error(`point devices at ${where}:${listener.port} (${describe(listener.tls)})`);
    }
    if (usernames.length) console.error(`devices: ${usernames.join(', ')}`);
    if (bridge.http)
      console.error(
        `status page at http://${bridge.http.host.includes(':') ? `[${bridge.http.host}]` : bridge.http.host}:${bridge.http.port}/`,
      );
    await writePidFile(config.spool.dir);

    // One reload at a time, in the order the signals came.
    let reloading = Promise.resolve();
    const reload = () => {
      reloading = reloading.then(async () => {
        logger.info({ config: loaded.file }, 'reloading config');
        try {
          const next = await loadConfig(loaded.file, { createMissingPasswords: true });
          printGenerated(next);
          await bridge.reload(next.config);
        } catch (err) {
          const errors = err instanceof ConfigError ? err.issues : [(err as Error).message];
          logger.error({ config: loaded.file, errors }, 'config reload failed: the running config stays');
        }
      });
    };
    process.on('SIGHUP', reload);
    await new Promise<void>((resolve) => {
      const shutdown = () => resolve();
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });
    process.off('SIGHUP', reload);
    await reloading;
    await bridge.stop();
    await removePidFile(config.spool.dir);
    return 0;
  });
}

function printGenerated(loaded: LoadedConfig): void {
  for (const generated of loaded.generatedPasswords) {
    // Printed once to the terminal, never to the log: it is a secret.
    console.error(`device "${generated.device}": generated password ${generated.password} (kept in ${generated.file})`);
  }
}

function describe(mode: string): string {
  if (mode === 'starttls') return 'STARTTLS, like port 587';
  if (mode === 'implicit') return 'implicit TLS / "SSL", like port 465';
  return 'no TLS';
}
