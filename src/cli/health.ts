import { loadConfig } from '../config/load.js';
import { CONFIG_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand } from './args.js';

const HELP = `usage: smtp-bridge health [--ready] [-c FILE]

Asks the running bridge's http endpoint (the config's http.listen, with its
password) for /healthz, or /readyz with --ready, and prints the answer.
Exit 0 when healthy (or ready), 1 otherwise: the Docker HEALTHCHECK and
monitoring scripts run this.

options:
      --ready         ask /readyz (upstreams reachable) instead of /healthz
  -c, --config FILE   config file (default ${DEFAULT_CONFIG})
  -h, --help          show this help`;

const TIMEOUT_MS = 10_000;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseCommandArgs(argv, { ...CONFIG_OPTION, ready: { type: 'boolean' } }, HELP);
    const { config } = await loadConfig(values.config!);
    if (!config.http) throw new Error(`${values.config} has no http section: the bridge serves no health endpoint`);
    const { host, port } = config.http.listen;
    // A wildcard address is reached on this machine's loopback address of the same family.
    const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}/${values.ready ? 'readyz' : 'healthz'}`;
    const password = config.http.password;
    const response = await fetch(url, {
      headers: password === undefined ? {} : { authorization: `Basic ${Buffer.from(`health:${password}`).toString('base64')}` },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    }).catch((err: Error) => {
      throw new Error(`${url}: ${(err.cause as Error | undefined)?.message ?? err.message}`);
    });
    process.stdout.write(`${response.status} ${await response.text()}`);
    return response.status === 200 ? 0 : 1;
  });
}
