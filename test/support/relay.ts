import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBridge, type TestBridge, type TestBridgeOptions } from './bridge.js';
import { makePki } from './pki.js';
import { providerYaml } from './provider-yaml.js';
import { startUpstream, type Upstream } from './upstream.js';

export interface Relay {
  bridge: TestBridge;
  /** The upstream named "provider": implicit TLS 1.2+, AUTH PLAIN, a certificate from its own CA. */
  provider: Upstream;
  stop(): Promise<void>;
}

export interface RelayOptions extends Omit<TestBridgeOptions, 'yaml'> {
  /** YAML for the devices, indented under `devices:`; they reach the provider as `upstream: provider`. */
  devices: string;
  /** YAML for further upstreams, indented under `upstreams:`. */
  upstreams?: string;
  /** Further top-level YAML (e.g. `http:` or `alert:`), at column 0. */
  settings?: string;
}

/** The bridge in front of one hardened provider: the setting of every test about what devices can do. */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { devices, upstreams = '', settings = '', ...bridgeOptions } = options;
  const pkiDir = await mkdtemp(join(tmpdir(), 'smtp-bridge-pki-'));
  const pki = await makePki(pkiDir);
  const provider = await startUpstream({ pki, mode: 'implicit' });
  const yaml = `upstreams:
${providerYaml({ name: 'provider', port: provider.port, caFile: pki.caFile })}${upstreams}devices:
${devices}
${settings}`;
  const bridge = await startTestBridge({ ...bridgeOptions, yaml }).catch(async (err: unknown) => {
    await provider.close();
    await rm(pkiDir, { recursive: true, force: true });
    throw err;
  });
  return {
    bridge,
    provider,
    async stop() {
      await bridge.stop();
      await provider.close();
      await rm(pkiDir, { recursive: true, force: true });
    },
  };
}
