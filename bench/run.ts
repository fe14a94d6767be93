import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { makePki } from '../test/support/pki.js';
import { sendOne, type DeviceTiming } from './client.js';

/**
 * npm run bench: the bridge (its own process) between TLS 1.0 + CRAM-MD5
 * devices and a TLS 1.2 + PLAIN provider (another process), all on
 * loopback. Prints one table. Numbers, never assertions: see bench/README.md.
 */

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const CONCURRENCY = [1, 10, 50];
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SERVERS = fileURLToPath(new URL('./servers.js', import.meta.url));
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const PASSWORD = 'bench-secret';

const body = (id: string) =>
  `From: Doorphone <doorphone@example.net>\r\nTo: owner@example.com\r\nSubject: Someone rang\r\nMessage-ID: ${id}\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\n\r\n` +
  'Someone rang the doorbell at the front door.\r\n'.repeat(20).trimEnd();

/** User and system CPU time of a process so far, in ms (all its threads: the fs thread pool's fsyncs count too). */
function cpuMs(pid: number): { user: number; sys: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: (Number(fields[11]) * 1000) / TICKS_PER_SECOND, sys: (Number(fields[12]) * 1000) / TICKS_PER_SECOND };
}

/** CPU ms per message (user + system), and the cell that shows it split. */
function cpuPerMessage(before: { user: number; sys: number }, after: { user: number; sys: number }): { total: number; cell: string } {
  const user = (after.user - before.user) / MESSAGES;
  const sys = (after.sys - before.sys) / MESSAGES;
  return { total: user + sys, cell: `${(user + sys).toFixed(2)} (${user.toFixed(2)} + ${sys.toFixed(2)})` };
}

function memoryKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : 0;
}

function startPeer(role: 'upstream' | 'sink', keyFile: string, certFile: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [SERVERS, role, keyFile, certFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve({ child, port: Number(chunk.toString().trim()) }));
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

async function drive(
  port: number,
  count: number,
  concurrency: number,
  tag: string,
): Promise<{ timings: Map<string, DeviceTiming>; seconds: number }> {
  const timings = new Map<string, DeviceTiming>();
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      const id = `<${tag}-${next++}@bench>`;
      timings.set(id, await sendOne(port, 'doorphone', PASSWORD, body(id)));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { timings, seconds: (performance.now() - started) / 1000 };
}

async function waitForEmptyQueue(spoolDir: string, logFile: string): Promise<void> {
  for (let i = 0; i < 6000; i++) {
    if (readdirSync(join(spoolDir, 'queue')).length === 0) return;
    await sleep(10);
  }
  const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join('\n');
  throw new Error(`the spool did not drain within 60 s; the bridge's last log lines:\n${tail}`);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const ms = (value: number) => value.toFixed(1);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-bench-'));
  const children: ChildProcess[] = [];
  try {
    const pki = await makePki(dir);
    const upstream = await startPeer('upstream', pki.keyFile, pki.certFile);
    const sink = await startPeer('sink', pki.keyFile, pki.certFile);
    children.push(upstream.child, sink.child);

    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address() as net.AddressInfo;
        probe.close(() => resolve(address.port));
      });
    });
    const spoolDir = join(dir, 'spool');
    const config = join(dir, 'bench.yaml');
    writeFileSync(
      config,
      `hostname: bridge.bench
listen:
  - { port: ${port}, tls: starttls, address: 127.0.0.1 }
tls: { cert_file: ${pki.certFile}, key_file: ${pki.keyFile}, min_version: TLSv1 }
max_message_size: 40MB
spool: { dir: ${spoolDir} }
upstreams:
  provider:
    host: 127.0.0.1
    port: ${upstream.port}
    tls: implicit
    ca_file: ${pki.caFile}
    auth: { user: relay@example.net, password: upstream-secret }
devices:
  doorphone:
    password: ${PASSWORD}
    mechanisms: [CRAM-MD5]
    senders: [doorphone@example.net]
    recipients: [owner@example.com]
    upstream: provider
`,
    );
    // Logs go to a file, as they would to a journal: the bridge pays for writing them, the generator does not read them.
    const logPath = join(dir, 'bridge.log');
    const logFile = openSync(logPath, 'w');
    // BENCH_PROFILE=DIR writes a V8 CPU profile of the bridge there, for finding where its time goes.
    const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
    const bridge = spawn(process.execPath, [...profile, CLI, 'serve', '-c', config], { stdio: ['ignore', logFile, logFile] });
    children.push(bridge);
    await waitForPort(port);
    const pid = bridge.pid!;

    await drive(port, 200, 10, 'warmup');
    await waitForEmptyQueue(spoolDir, logPath);

    const rows: string[][] = [];
    /** Per concurrency: p99 DATA-end → 250, and the bridge's and the sink's CPU per message, for the ratios under the table. */
    const p99Reply = new Map<number, number>();
    const bridgeCpu = new Map<number, number>();
    const sinkCpu = new Map<number, number>();
    const allTimings = new Map<string, DeviceTiming>();
    for (const concurrency of CONCURRENCY) {
      const cpuBefore = cpuMs(pid);
      const { timings, seconds } = await drive(port, MESSAGES, concurrency, `c${concurrency}`);
      await waitForEmptyQueue(spoolDir, logPath);
      const cpuAfter = cpuMs(pid);
      const replies = [...timings.values()].map((t) => t.dataToReply);
      timings.forEach((timing, id) => allTimings.set(id, timing));
      const cpu = cpuPerMessage(cpuBefore, cpuAfter);
      p99Reply.set(concurrency, percentile(replies, 99));
      bridgeCpu.set(concurrency, cpu.total);
      rows.push(replyOnlyRow(`bridge c=${concurrency}`, seconds, replies, cpu.cell));
    }
    const peakRss = memoryKb(pid, 'VmHWM');

    const rssBefore = memoryKb(pid, 'VmRSS');
    let rssMax = rssBefore;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, memoryKb(pid, 'VmRSS'))), 5);
    const line = `${'x'.repeat(76)}\r\n`;
    const big = `Message-ID: <big@bench>\r\nSubject: 25 MB\r\n\r\n${line.repeat(Math.ceil((25 * 1024 * 1024) / line.length)).trimEnd()}`;
    await sendOne(port, 'doorphone', PASSWORD, big);
    await waitForEmptyQueue(spoolDir, logPath);
    clearInterval(sampler);

    const ceiling: string[][] = [];
    for (const concurrency of [10, 50]) {
      const cpuBefore = cpuMs(sink.child.pid!);
      const { timings, seconds } = await drive(sink.port, MESSAGES, concurrency, `sink${concurrency}`);
      const replies = [...timings.values()].map((t) => t.dataToReply);
      const cpu = cpuPerMessage(cpuBefore, cpuMs(sink.child.pid!));
      sinkCpu.set(concurrency, cpu.total);
      ceiling.push(replyOnlyRow(`generator ceiling c=${concurrency}`, seconds, replies, cpu.cell));
    }

    await new Promise<void>((resolve) => {
      bridge.once('exit', () => resolve());
      bridge.kill('SIGTERM');
    });
    const arrivals = await new Promise<Record<string, number>>((resolve) => {
      let output = '';
      upstream.child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      upstream.child.once('exit', () => resolve(JSON.parse(output.trim().split('\n').pop() ?? '{}') as Record<string, number>));
      upstream.child.kill('SIGTERM');
    });
    const p99Upstream = new Map<number, number>();
    for (const row of rows) {
      const tag = row[0].replace('bridge c=', 'c');
      const hops = [...allTimings.entries()]
        .filter(([id]) => id.startsWith(`<${tag}-`))
        .map(([id, t]) => arrivals[id] - t.dataEndAt)
        .filter(Number.isFinite);
      row[5] = ms(percentile(hops, 50));
      row[6] = ms(percentile(hops, 95));
      row[7] = ms(percentile(hops, 99));
      p99Upstream.set(Number(tag.slice(1)), percentile(hops, 99));
    }

    const header = [
      'run',
      'msg/s',
      'p50 →250',
      'p95 →250',
      'p99 →250',
      'p50 →upstream',
      'p95 →upstream',
      'p99 →upstream',
      'server CPU ms/msg (user + sys)',
    ];
    const table = [header, ...rows, ...ceiling];
    const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
    console.log(
      `\nsmtp-bridge benchmark: ${MESSAGES} messages per run, one per connection, STARTTLS TLS 1.0 + CRAM-MD5 in, implicit TLS 1.2+ + PLAIN out`,
    );
    console.log(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; latencies in ms\n`,
    );
    for (const row of table) console.log(row.map((cell, i) => cell.padStart(widths[i])).join('  '));
    console.log(
      "\nserver CPU: the bridge process in bridge rows; in ceiling rows the accept-and-forget server (smtp-server, same TLS and AUTH, no disk, no upstream): the floor under the bridge's inbound side",
    );
    const ratios = (of: (c: number) => number) => [10, 50].map((c) => `c=${c} ${of(c).toFixed(2)}×`).join(', ');
    console.log(`\np99 DATA-end → provider / p99 DATA-end → 250: ${ratios((c) => p99Upstream.get(c)! / p99Reply.get(c)!)}`);
    console.log(`CPU per message, bridge / accept-only sink: ${ratios((c) => bridgeCpu.get(c)! / sinkCpu.get(c)!)}`);
    console.log(`\nbridge peak RSS (all runs): ${(peakRss / 1024).toFixed(1)} MB`);
    console.log(`RSS growth while one 25 MB message passed through: ${((rssMax - rssBefore) / 1024).toFixed(1)} MB`);
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

/** A table row with DATA-end → 250 figures and no provider columns: a run without arrivals to time. */
function replyOnlyRow(label: string, seconds: number, replies: number[], cpuCell: string): string[] {
  return [
    label,
    (MESSAGES / seconds).toFixed(0),
    ms(percentile(replies, 50)),
    ms(percentile(replies, 95)),
    ms(percentile(replies, 99)),
    '',
    '',
    '',
    cpuCell,
  ];
}
