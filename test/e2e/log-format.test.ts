import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { freePort } from '../support/ports.js';
import { CLI, NODE } from '../support/cli.js';

/** A minimal bridge config on a free loopback port; `log` is the config's log block, if any. */
async function configFile(t: TestContext, log?: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-logfmt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bridge.yaml');
  const lines = [
    `listen: [{ port: ${await freePort()}, address: 127.0.0.1, tls: none }]`,
    'upstreams: { capture: { type: directory, path: captured } }',
    'devices: { demo: { password: demo-secret, senders: ["@example.com"], upstream: capture } }',
  ];
  if (log) lines.push(log);
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  return file;
}

/** Runs a command until its output shows the listener is up, then stops it with SIGTERM; returns what it printed. */
function outputUntilListening(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const limit = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no "listening" within 15 s:\n${output}`));
    }, 15_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (/listening/.test(output)) child.kill('SIGTERM');
    });
    child.once('exit', () => {
      clearTimeout(limit);
      resolve(output);
    });
  });
}

const jsonLines = (output: string) => output.split('\n').filter((line) => line.startsWith('{'));

test('logs are JSON lines when stdout is not a terminal, by default', async (t) => {
  const output = await outputUntilListening(NODE, [CLI, 'serve', '-c', await configFile(t)]);
  const listening = jsonLines(output)
    .map((line) => JSON.parse(line) as { msg: string; level: string })
    .find((line) => line.msg === 'listening');
  assert.equal(listening?.level, 'info', output);
});

test('--log-format pretty prints readable lines instead of JSON', async (t) => {
  const output = await outputUntilListening(NODE, [CLI, 'serve', '-c', await configFile(t), '--log-format', 'pretty']);
  assert.deepEqual(jsonLines(output), [], output);
  assert.match(output, /INFO.*: listening/);
});

test('log.format: pretty in the config does the same; --log-format json overrides it', async (t) => {
  const file = await configFile(t, 'log: { format: pretty }');
  assert.match(await outputUntilListening(NODE, [CLI, 'serve', '-c', file]), /INFO.*: listening/);
  const overridden = await outputUntilListening(NODE, [CLI, 'serve', '-c', file, '--log-format', 'json']);
  assert.ok(jsonLines(overridden).length > 0, overridden);
});

test('on an interactive terminal (a pseudo-terminal from script(1)) the default is readable lines', async (t) => {
  const file = await configFile(t);
  const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const output = await outputUntilListening('script', ['-qfec', [NODE, CLI, 'serve', '-c', file].map(shellQuote).join(' '), '/dev/null']);
  assert.notEqual(stripVTControlCharacters(output), output, 'a terminal gets colours');
  assert.match(stripVTControlCharacters(output), /INFO: listening/);
  assert.doesNotMatch(output, /^\{"level"/m);
});

test('an unknown --log-format is a usage error (exit 2)', async (t) => {
  const child = spawn(NODE, [CLI, 'serve', '-c', await configFile(t), '--log-format', 'xml'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 2);
  assert.match(stderr, /--log-format must be one of auto, json, pretty/);
});
