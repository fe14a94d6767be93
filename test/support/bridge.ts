import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { startBridge, type RunningBridge } from '../../src/bridge.js';
import { createLogger } from '../../src/observe/logger.js';
import { makeSelfSigned, type SelfSigned } from './pki.js';
import { freePort } from './ports.js';
import { waitUntil } from './wait.js';

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** The log lines with message `msg` whose fields include `fields`. */
export function logsAbout(logs: LogLine[], msg: string, fields: Record<string, unknown> = {}): LogLine[] {
  return logs.filter((line) => line.msg === msg && Object.entries(fields).every(([key, value]) => line[key] === value));
}

export interface TestBridge {
  dir: string;
  /** The config file, for running CLI commands against this bridge. */
  file: string;
  /** Port of each listener, by tls mode. */
  ports: { none?: number; starttls?: number; implicit?: number };
  logs: LogLine[];
  /** The first log line (seen so far or yet to come) that matches. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Stops the bridge and starts it again on the same directory, config and ports, as after a reboot. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestBridgeOptions {
  /** YAML for `upstreams:` and `devices:` (and anything else top-level), indented at column 0. */
  yaml: string;
  /** Extra keys for each listener, e.g. "allow_cleartext_auth: true" for the cleartext one. */
  cleartextListenerExtra?: string;
  /** The same for the implicit-TLS listener, e.g. "auth_equals: false". */
  implicitListenerExtra?: string;
  minVersion?: string;
  /** Address of every listener; "::" takes IPv6 clients too, and IPv4 ones as IPv4-mapped addresses. Default 127.0.0.1. */
  address?: string;
  /** Runs after the bridge's directory exists and before the bridge starts (e.g. to mount a small disk as its spool). */
  prepare?: (dir: string) => Promise<void>;
  /** Undoes `prepare` before the directory is removed. */
  cleanup?: (dir: string) => Promise<void>;
  /** Let the bridge create its own certificate, as on a first start, instead of the file's shared one. */
  ownCertificate?: boolean;
}

let sharedCertificate: Promise<SelfSigned> | undefined;
const LISTENER_CERTIFICATE_DAYS = '30';

/**
 * One listener certificate for every bridge this test file starts: the
 * bridge would otherwise create an RSA key at each start, which is most of
 * its start-up. (Tests that spawn `serve` still see it create its own.)
 * It outlives the 14 days within which a bridge with `alert` reports its
 * certificate as expiring, so that alert comes only where a test asks for it.
 */
function bridgeCertificate(): Promise<SelfSigned> {
  sharedCertificate ??= mkdtemp(join(tmpdir(), 'smtp-bridge-cert-')).then(async (dir) => {
    try {
      return await makeSelfSigned(dir, 'bridge', LISTENER_CERTIFICATE_DAYS);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  return sharedCertificate;
}

/**
 * The real bridge, in this process, configured through the real YAML loader,
 * with one listener of each TLS mode on 127.0.0.1 and its log lines captured.
 */
export async function startTestBridge(options: TestBridgeOptions): Promise<TestBridge> {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-test-'));
  const address = options.address ?? '127.0.0.1';
  const ports = { none: await freePort(), starttls: await freePort(), implicit: await freePort() };
  const extra = options.cleartextListenerExtra ? `, ${options.cleartextListenerExtra}` : '';
  const implicitExtra = options.implicitListenerExtra ? `, ${options.implicitListenerExtra}` : '';
  const yaml = `hostname: bridge.test
listen:
  - { port: ${ports.starttls}, tls: starttls, address: "${address}" }
  - { port: ${ports.implicit}, tls: implicit, address: "${address}"${implicitExtra} }
  - { port: ${ports.none}, tls: none, address: "${address}"${extra} }
tls:
  cert_file: bridge.crt
  key_file: bridge.key
  min_version: ${options.minVersion ?? 'TLSv1'}
spool:
  dir: spool
${options.yaml}`;
  const file = join(dir, 'smtp-bridge.yaml');
  await writeFile(file, yaml);
  if (!options.ownCertificate) {
    const certificate = await bridgeCertificate();
    await writeFile(join(dir, 'bridge.crt'), certificate.certPem);
    await writeFile(join(dir, 'bridge.key'), certificate.keyPem, { mode: 0o600 });
  }
  const logs: LogLine[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  let bridge: RunningBridge;
  try {
    await options.prepare?.(dir);
    const { config } = await loadConfig(file);
    bridge = await startBridge(config, logger);
  } catch (err) {
    await options.cleanup?.(dir);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    file,
    ports,
    logs,
    waitForLog: (predicate, timeoutMs = 10_000) =>
      waitUntil(
        () => `a log line; last logs: ${JSON.stringify(logs.slice(-5))}`,
        () => logs.find(predicate),
        timeoutMs,
      ),
    async restart() {
      await bridge.stop();
      bridge = await startBridge((await loadConfig(file)).config, logger);
    },
    async stop() {
      await bridge.stop();
      await options.cleanup?.(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
