import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { pythonSmtplib } from '../support/python-client.js';
import { makePki, type Pki } from '../support/pki.js';
import { providerYaml } from '../support/provider-yaml.js';
import { freePort } from '../support/ports.js';
import { runCli, type CliResult } from '../support/cli.js';
import { waitUntil } from '../support/wait.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

let pkiDir: string;
let pki: Pki;
let bridge: TestBridge;
let downPort: number;
let refusing: Upstream;
let refuse = true;

before(async () => {
  pkiDir = await mkdtemp(join(tmpdir(), 'smtp-bridge-pki-'));
  pki = await makePki(pkiDir);
  downPort = await freePort();
  refusing = await startUpstream({ pki, mode: 'implicit', onData: () => (refuse ? { code: 554, message: '5.7.1 Not today' } : undefined) });
  const upstream = (name: string, port: number) => providerYaml({ name, port, caFile: pki.caFile });
  bridge = await startTestBridge({
    // Retries only when a queue tool asks: the tests below decide when delivery happens.
    yaml: `delivery: { sync_wait: 2s, retry_initial: 1h, retry_max: 1h }
upstreams:
${upstream('later', downPort)}${upstream('strict', refusing.port)}
devices:
  sensor: { auth: none, networks: [127.0.0.1], senders: [sensor@example.net], upstream: later }
  camera: { auth: none, networks: [127.0.0.2], senders: [camera@example.net], upstream: strict }
`,
  });
});

after(async () => {
  await bridge?.stop();
  await refusing?.close();
  await rm(pkiDir, { recursive: true, force: true });
});

const queue = (...args: string[]): Promise<CliResult> => runCli(['queue', ...args, '-c', bridge.file]);

async function send(device: 'sensor' | 'camera', subject: string): Promise<string> {
  const result = await pythonSmtplib({
    host: '127.0.0.1',
    port: bridge.ports.none!,
    security: 'none',
    sourceAddress: device === 'sensor' ? '127.0.0.1' : '127.0.0.2',
    from: `${device}@example.net`,
    to: ['owner@example.com'],
    message: `Subject: ${subject}\r\n\r\nbody\r\n`,
  });
  const id = /(?:Queued as |spool\/failed\/)([0-9A-Z]{19})/.exec(result.transcript)?.[1];
  if (id) return id;
  const bounced = bridge.logs.findLast((l) => l.msg === 'bounced' && l.device === device);
  return String(bounced?.queue_id ?? assert.fail(result.transcript));
}

test('queue list, show and delete, in words and in JSON, while the server runs', async () => {
  const first = await send('sensor', 'one');
  const second = await send('sensor', 'two');

  const list = await queue('list');
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^ID +AGE +DEVICE +FROM +TO \(PENDING\) +TRIES +NEXT ATTEMPT +LAST ERROR$/m);
  assert.match(list.stdout, new RegExp(`^${first} .* sensor +sensor@example\\.net +owner@example\\.com +1 .*ECONNREFUSED`, 'm'));
  assert.match(list.stdout, /^2 queued$/m);

  const json = JSON.parse((await queue('list', '--json')).stdout) as { id: string; state: { attempts: number } }[];
  assert.deepEqual(
    json.map((m) => m.id),
    [first, second],
  );
  assert.equal(json[0].state.attempts, 1);

  const show = await queue('show', first);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /^area: +queue$/m);
  assert.match(show.stdout, /^device: +sensor$/m);
  assert.match(show.stdout, /^last error: +.*ECONNREFUSED/m);

  const deleted = await queue('delete', first);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout.trim(), `deleted ${first} from queue`);
  assert.equal(existsSync(join(bridge.dir, 'spool', 'queue', `${first}.msg`)), false);
  const gone = await queue('show', first);
  assert.equal(gone.code, 1);
  assert.equal(gone.stderr.trim(), `smtp-bridge: no message ${first} in the queue or the failed area`);

  await queue('delete', second);
  assert.equal((await queue('list')).stdout.trim(), 'queue is empty');
});

test('queue delete refuses a message that is being delivered', async () => {
  const id = await send('sensor', 'busy');
  // The server holds this lock (a second name of the message file) for the length of a delivery attempt.
  const lock = join(bridge.dir, 'spool', 'queue', `${id}.lock`);
  writeFileSync(lock, '');
  const refused = await queue('delete', id);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /is being delivered right now/);
  await rm(lock);
  assert.equal((await queue('delete', id)).code, 0);
});

test('queue retry ID: the running server delivers it now', async () => {
  const id = await send('sensor', 'retry me');
  const provider = await startUpstream({ pki, mode: 'implicit', port: downPort });
  try {
    const retried = await queue('retry', id);
    assert.equal(retried.code, 0, retried.stderr);
    assert.equal(retried.stdout.trim(), '1 message due now');
    const [delivered] = await provider.waitForMessages(1, 5000);
    assert.match(delivered.raw.toString(), /^Subject: retry me\r$/m);
    await waitUntil('the spool to let go of the message', () => !existsSync(join(bridge.dir, 'spool', 'queue', `${id}.msg`)));
  } finally {
    await provider.close();
  }
});

test('queue failed lists refused messages; retry puts one back in the queue', async () => {
  const id = await send('camera', 'refused');
  const failed = await queue('failed');
  assert.equal(failed.code, 0, failed.stderr);
  assert.match(
    failed.stdout,
    new RegExp(`^${id} .* camera +camera@example\\.net +owner@example\\.com +owner@example\\.com: 554 5\\.7\\.1 Not today$`, 'm'),
  );
  const failedJson = JSON.parse((await queue('failed', '--json')).stdout) as { id: string; state: { reason: string } }[];
  assert.ok(failedJson.some((m) => m.id === id && /Not today/.test(m.state.reason)));

  refuse = false;
  const retried = await queue('retry', id, '--json');
  assert.deepEqual(JSON.parse(retried.stdout), { retried: [id] });
  const [delivered] = await refusing.waitForMessages(1, 5000);
  assert.deepEqual(delivered.envelope, { mailFrom: 'camera@example.net', rcptTo: ['owner@example.com'] });
  await waitUntil(
    'the message to leave the spool',
    () => !existsSync(join(bridge.dir, 'spool', 'queue', `${id}.msg`)) && !existsSync(join(bridge.dir, 'spool', 'failed', `${id}.msg`)),
  );
});

test('queue usage errors exit 2, --help exits 0', async () => {
  assert.equal((await queue('bogus')).code, 2);
  assert.equal((await queue('show')).code, 2);
  assert.equal((await queue('list', 'extra')).code, 2);
  const help = await queue('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: smtp-bridge queue/);
});
