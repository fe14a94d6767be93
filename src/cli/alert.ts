import { loadConfig } from '../config/load.js';
import { Alert } from '../observe/alert.js';
import { createLogger } from '../observe/logger.js';
import { CONFIG_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand, UsageError } from './args.js';

const HELP = `usage: smtp-bridge alert test [-c FILE]

Sends a test event through the alert command and webhook of the config, as
the bridge would, and says for each whether it went through. Exit 0 when
every configured way worked, 1 otherwise.

options:
  -c, --config FILE   config file (default ${DEFAULT_CONFIG})
  -h, --help          show this help`;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseCommandArgs(argv, CONFIG_OPTION, HELP, true);
    if (positionals.length !== 1 || positionals[0] !== 'test') throw new UsageError(HELP);
    const { config } = await loadConfig(values.config!);
    if (!config.alert) throw new Error(`${values.config} has no alert section: nothing to test`);
    // The Alert logs each outcome; here those lines would only repeat what is printed below.
    const alert = new Alert(config.alert, config.hostname, createLogger('silent'));
    const results = await alert.deliver({ event: 'test' });
    for (const { via, error } of results) console.log(`${via.padEnd(8)} ${error ? `failed: ${error}` : 'sent'}`);
    return results.every((result) => !result.error) ? 0 : 1;
  });
}
