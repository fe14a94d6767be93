import { ConfigError, loadConfig } from '../config/load.js';
import { CONFIG_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand } from './args.js';
import { runningServePid } from './pid-file.js';

const HELP = `usage: smtp-bridge reload [-c FILE]

Checks the config file and, if it is valid, asks the running bridge to
re-read it (SIGHUP, as "systemctl reload" sends). Devices, upstreams,
policy, limits, delivery and alert settings, and the certificate files'
content apply to new sessions; open sessions and the queue are untouched.
Changes to listen, tls paths and versions, hostname, limits, spool, http
or log need a restart, and the bridge logs them as such.

An invalid file is reported here and not sent: the bridge keeps running
the config it has.

options:
  -c, --config FILE   config file (default ${DEFAULT_CONFIG})
  -h, --help          show this help`;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseCommandArgs(argv, CONFIG_OPTION, HELP);
    let spoolDir: string;
    try {
      spoolDir = (await loadConfig(values.config!)).config.spool.dir;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(`${err.message}\nnot reloaded: the bridge keeps its running config`);
      return 1;
    }
    const pid = await runningServePid(spoolDir);
    process.kill(pid, 'SIGHUP');
    console.log(`asked the bridge (pid ${pid}) to reload; its log says "config reloaded" or why not`);
    return 0;
  });
}
