import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { startBridge, type RunningBridge } from '../../src/main.js';
import { createLogger } from '../../src/observe/logger.js';
import { freePort } from './ports.js';

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface TestBridge {
  dir: string;
  /** Port of each listener, by tls mode. */
  ports: { none?: number; starttls?: number; implicit?: number };
  logs: LogLine[];
  stop(): Promise<void>;
}

export interface TestBridgeOptions {
  /** YAML for `upstreams:` and `devices:` (and anything else top-level), indented at column 0. */
  yaml: string;
  /** Extra keys for each listener, e.g. "allow_cleartext_auth: true" for the cleartext one. */
  cleartextListenerExtra?: string;
  minVersion?: string;
}

/**
 * The real bridge, in this process, configured through the real YAML loader,
 * with one listener of each TLS mode on 127.0.0.1 and its log lines captured.
 */
export async function startTestBridge(options: TestBridgeOptions): Promise<TestBridge> {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-test-'));
  const ports = { none: await freePort(), starttls: await freePort(), implicit: await freePort() };
  const extra = options.cleartextListenerExtra ? `, ${options.cleartextListenerExtra}` : '';
  const yaml = `hostname: bridge.test
listen:
  - { port: ${ports.starttls}, tls: starttls, address: 127.0.0.1 }
  - { port: ${ports.implicit}, tls: implicit, address: 127.0.0.1 }
  - { port: ${ports.none}, tls: none, address: 127.0.0.1${extra} }
tls:
  cert_file: bridge.crt
  key_file: bridge.key
  min_version: ${options.minVersion ?? 'TLSv1'}
spool:
  dir: spool
${options.yaml}`;
  const file = join(dir, 'smtp-bridge.yaml');
  await writeFile(file, yaml);
  const logs: LogLine[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  let bridge: RunningBridge;
  try {
    const { config } = await loadConfig(file);
    bridge = await startBridge(config, logger);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    ports,
    logs,
    async stop() {
      await bridge.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
