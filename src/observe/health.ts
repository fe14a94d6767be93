import { close, fsync, open, unlink, write } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../config/schema.js';
import type { Activity } from './activity.js';
import type { BridgeView } from './bridge-view.js';

export interface HealthReport {
  ok: boolean;
  /** One line per check that failed; empty when ok. */
  problems: string[];
}

const fsOpen = promisify(open);
const fsWrite = promisify(write);
const fsSync = promisify(fsync);
const fsClose = promisify(close);
const fsUnlink = promisify(unlink);

/** A reachability answer is reused this long, so a busy monitor cannot make the bridge hammer its providers. */
const REACHABILITY_TTL_MS = 10_000;
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * /healthz: can the bridge take mail (listeners up, spool writable)?
 * /readyz: can it pass mail on (every SMTP upstream reachable and its last
 * attempt not failed at the upstream)?
 */
export class Health {
  private readonly reachability = new Map<string, { at: number; problem?: Promise<string | undefined> }>();

  constructor(
    private readonly view: BridgeView,
    private readonly activity: Activity,
    /** Read at each check: a reload may change the upstreams. */
    private readonly upstreams: () => Config['upstreams'],
  ) {}

  async live(): Promise<HealthReport> {
    const problems = this.view
      .listeners()
      .filter((listener) => !listener.listening)
      .map((listener) => `listener ${listener.address}:${listener.port} is not listening`);
    const spool = await probeWritable(this.view.spoolDir);
    if (spool) problems.push(`spool ${this.view.spoolDir} is not writable: ${spool}`);
    return { ok: problems.length === 0, problems };
  }

  async ready(): Promise<HealthReport> {
    const problems: string[] = [];
    for (const [name, upstream] of Object.entries(this.upstreams())) {
      if (upstream.type !== 'smtp') continue;
      const failing = this.activity.upstreams.get(name);
      if (failing?.failingSince !== undefined)
        problems.push(`upstream ${name} failing since ${new Date(failing.failingSince).toISOString()}: ${failing.lastError?.response}`);
      const unreachable = await this.reachable(name, upstream.host, upstream.port ?? (upstream.tls === 'implicit' ? 465 : 587));
      if (unreachable) problems.push(`upstream ${name} unreachable: ${unreachable}`);
    }
    return { ok: problems.length === 0, problems };
  }

  private reachable(name: string, host: string, port: number): Promise<string | undefined> {
    const cached = this.reachability.get(name);
    if (cached?.problem && Date.now() - cached.at < REACHABILITY_TTL_MS) return cached.problem;
    const problem = connectProblem(host, port);
    this.reachability.set(name, { at: Date.now(), problem });
    return problem;
  }
}

/** Writes, syncs and removes a small file, as taking a message would; the error code when that fails. */
async function probeWritable(dir: string): Promise<string | undefined> {
  const file = join(dir, `.health-${process.pid}`);
  try {
    const fd = await fsOpen(file, 'w', 0o600);
    try {
      await fsWrite(fd, 'ok\n');
      await fsSync(fd);
    } finally {
      await fsClose(fd);
    }
    await fsUnlink(file);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

/** Opens and closes a TCP connection; the reason when that fails. */
function connectProblem(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: CONNECT_TIMEOUT_MS });
    const done = (problem?: string) => {
      socket.destroy();
      resolve(problem);
    };
    socket.once('connect', () => done());
    socket.once('timeout', () => done(`no connection to ${host}:${port} within ${CONNECT_TIMEOUT_MS / 1000} s`));
    socket.once('error', (err: NodeJS.ErrnoException) => done(`${host}:${port}: ${err.code ?? err.message}`));
  });
}
