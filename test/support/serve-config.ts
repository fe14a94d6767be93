import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { providerYaml } from './provider-yaml.js';

/** What every config of one test file shares. */
export interface ServeSetup {
  /** Directory of the config files; spools and the generated certificate live there too. */
  dir: string;
  /** CA of the provider "provider" played by startUpstream(). */
  caFile: string;
  /** The one device: auth none, from 127.0.0.1, sending as `from`. */
  device: string;
  from: string;
}

export interface ServeSettings {
  /** Relative to the directory; two configs naming the same spool play one bridge restarted with another provider. */
  spoolDir: string;
  /** The `delivery:` flow map, e.g. "sync_wait: 300, shutdown_wait: 1s". */
  delivery: string;
}

/** NAME.yaml for `smtp-bridge serve` as a separate process: one plain listener, one provider, one device. */
export async function writeServeConfig(
  setup: ServeSetup,
  name: string,
  ports: { listen: number; upstream: number },
  settings: ServeSettings,
): Promise<string> {
  const file = join(setup.dir, `${name}.yaml`);
  await writeFile(
    file,
    `hostname: bridge.test
listen:
  - { port: ${ports.listen}, tls: none, address: 127.0.0.1 }
tls: { cert_file: bridge.crt, key_file: bridge.key }
spool: { dir: ${settings.spoolDir} }
delivery: { ${settings.delivery} }
upstreams:
${providerYaml({ name: 'provider', port: ports.upstream, caFile: setup.caFile })}devices:
  ${setup.device}: { auth: none, networks: [127.0.0.1], senders: [${setup.from}], upstream: provider }
`,
  );
  return file;
}
