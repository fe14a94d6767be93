#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';

/**
 * Each command lives in its own file and exports `run(argv)`, resolving to the
 * exit code: 0 success, 1 a failure it explained in one line, 2 bad usage.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  serve: { summary: 'run the bridge', load: () => import('./serve.js') },
  reload: { summary: 'make the running bridge re-read its config (as SIGHUP does)', load: () => import('./reload.js') },
  health: { summary: "ask the running bridge's /healthz (or /readyz), for Docker and scripts", load: () => import('./health.js') },
  'check-config': { summary: 'validate a config file and print a summary', load: () => import('./check-config.js') },
  queue: { summary: 'list, show, retry or delete spooled messages', load: () => import('./queue.js') },
  device: { summary: 'list devices and their state, or unfreeze one', load: () => import('./device.js') },
  oauth: { summary: "sign in to an XOAUTH2 upstream, or show its tokens' state", load: () => import('./oauth.js') },
  'hash-secret': { summary: 'turn a device password into the stored secret for its config entry', load: () => import('./hash-secret.js') },
  probe: { summary: 'show the TLS versions, AUTH mechanisms and certificate an SMTP server offers', load: () => import('./probe.js') },
  'send-test': {
    summary: 'send one test message through the bridge as a device, or straight to an upstream',
    load: () => import('./send-test.js'),
  },
  'auth-response': { summary: 'answer a CRAM-MD5 or DIGEST-MD5 challenge, for testing by hand', load: () => import('./auth-response.js') },
  alert: { summary: 'send a test alert through the configured command and webhook', load: () => import('./alert.js') },
};

const USAGE = `usage: smtp-bridge <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, command]) => `  ${name.padEnd(14)} ${command.summary}`)
  .join('\n')}

Run "smtp-bridge <command> --help" for a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return 0;
  }
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    console.error(name ? `smtp-bridge: unknown command "${name}"\n\n${USAGE}` : USAGE);
    return 2;
  }
  return (await command.load()).run(rest);
}

const invokedDirectly = process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`smtp-bridge: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
