import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { startBrowser, type TestBrowser } from '../support/browser.js';
import type { ClientOptions } from '../support/client-options.js';
import { pythonSmtplib } from '../support/python-client.js';
import { freePort } from '../support/ports.js';
import { waitUntil } from '../support/wait.js';
import { startRelay, type Relay } from '../support/relay.js';
import { startDownPort } from '../support/upstream.js';

/** Screenshots land beside the compiled tests, where CI keeps them as artifacts (dist/ is not committed). */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const PASSWORD = 'status-page-secret';

let relay: Relay;
let browser: TestBrowser;
let base: string;

before(async () => {
  const port = await freePort();
  const down = await startDownPort();
  relay = await startRelay({
    devices: `  doorphone:
    password: door-secret
    senders: [door@example.net]
    upstream: provider
  camera:
    password: camera-secret
    senders: [camera@example.net]
    upstream: provider
    freeze_after: 1/1h
  "<i>lamp</i>":
    password: lamp-secret
    senders: [lamp@example.net]
    upstream: provider
  printer:
    password: printer-secret
    senders: [printer@example.net]
    upstream: backup
`,
    upstreams: `  backup:
    host: 127.0.0.1
    port: ${down}
    tls: implicit
    connect_timeout: 2s
    auth: { user: backup@example.net, password: backup-secret }
`,
    // The printer's message expires within seconds, so the page has a failure to show.
    settings: `http:\n  listen: 127.0.0.1:${port}\n  password: ${PASSWORD}\ndelivery: { retry_initial: 300ms, retry_max: 600ms, max_age: 1500ms }\n`,
  });
  base = `http://127.0.0.1:${port}`;
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

const send = (name: string, over: Partial<ClientOptions> = {}) =>
  pythonSmtplib({
    host: '127.0.0.1',
    port: relay.bridge.ports.starttls!,
    security: 'starttls',
    tlsVersion: 'TLSv1.2',
    mechanism: 'PLAIN',
    username: name,
    password: `${name === 'doorphone' ? 'door' : name}-secret`,
    from: `${name === 'doorphone' ? 'door' : name}@example.net`,
    to: ['owner@example.com'],
    message: 'Subject: hello\r\n\r\nbody\r\n',
    ...over,
  });

test('basic auth guards every route when a password is set', async () => {
  for (const path of ['/', '/metrics', '/healthz', '/readyz']) {
    const anonymous = await fetch(`${base}${path}`);
    assert.equal(anonymous.status, 401, path);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm="smtp-bridge"/);
    const wrong = await fetch(`${base}${path}`, { headers: { authorization: `Basic ${btoa('admin:guess')}` } });
    assert.equal(wrong.status, 401, path);
  }
  const right = await fetch(`${base}/healthz`, { headers: { authorization: `Basic ${btoa(`anyone:${PASSWORD}`)}` } });
  assert.equal(right.status, 200);
});

test('the status page in a real browser at 360 px shows a device that just sent, a frozen device and a failing upstream', async () => {
  const sent = await send('doorphone');
  assert.ok(sent.ok, sent.transcript);
  assert.ok((await send('camera')).ok);
  const frozen = await send('camera');
  assert.equal(frozen.code, 550, frozen.transcript);
  const queued = await send('printer');
  assert.ok(queued.ok, queued.transcript);
  await relay.provider.waitForMessages(2, 10_000);
  const expired = await waitUntil(
    'the printer message to expire',
    () => relay.bridge.logs.find((line) => line.msg === 'expired' && line.device === 'printer'),
    15_000,
    200,
  );
  const queueId = String(expired.queue_id);

  const page = await browser.browser.newPage();
  try {
    await page.setViewport({ width: 360, height: 740, deviceScaleFactor: 1 });
    await page.authenticate({ username: 'admin', password: PASSWORD });
    const response = await page.goto(`${base}/`, { waitUntil: 'load', timeout: 20_000 });
    assert.equal(response?.status(), 200);
    // The test compiles without the DOM library: what runs in the page is written as source text.
    const card = (selector: string) => page.evaluate(`document.querySelector(${JSON.stringify(selector)}).innerText`) as Promise<string>;

    const doorphone = await card('[data-device="doorphone"]');
    assert.match(doorphone, /active/);
    assert.match(doorphone, /last seen\s+\d+ s ago from 127\.0\.0\.1/);
    assert.match(doorphone, /TLSv1\.2, PLAIN/);
    assert.match(doorphone, /1 today, 1 this week/);
    assert.match(doorphone, /last delivery\s+delivered via provider/);
    assert.match(await card('[data-device="printer"]'), /last delivery\s+failed expired after \d+ attempts: connect ECONNREFUSED/);

    const camera = await card('[data-device="camera"]');
    assert.match(camera, /FROZEN/);
    assert.match(camera, /2 message attempts within 1h \(freeze_after 1\/1h\)/);

    const backup = await card('[data-upstream="backup"]');
    assert.match(backup, /FAILING/);
    assert.match(backup, /ECONNREFUSED/);
    assert.match(backup, /nothing listens there/);
    assert.match(await card('[data-upstream="provider"]'), /ok/);
    const queue = await card('.queue');
    assert.match(queue, /waiting\s+0 messages\b/);
    assert.match(queue, /failed area\s+1 message\b/);
    assert.match(queue, new RegExp(`${queueId} from printer via backup, \\d+ s ago: expired after \\d+ attempts: connect ECONNREFUSED`));

    const text = (await page.evaluate('document.body.innerText')) as string;
    assert.doesNotMatch(text, /secret/);
    // Usable on a phone: nothing wider than the screen.
    assert.ok(((await page.evaluate('document.documentElement.scrollWidth')) as number) <= 360);
    // A device name with markup is text on the page, not an element.
    assert.match(await card('[data-device="<i>lamp</i>"]'), /^<i>lamp<\/i>/);
    assert.equal(await page.evaluate('document.querySelectorAll("i").length'), 0);
    const refresh = await page.$eval('meta[http-equiv="refresh"]', (meta) => meta.getAttribute('content'));
    assert.equal(refresh, '30');

    // The same failing upstream makes the bridge not ready, with the reason.
    const ready = await fetch(`${base}/readyz`, { headers: { authorization: `Basic ${btoa(`x:${PASSWORD}`)}` } });
    assert.equal(ready.status, 503);
    const reasons = await ready.text();
    assert.match(reasons, /^upstream backup failing since .*ECONNREFUSED/m);
    assert.match(reasons, /^upstream backup unreachable: 127\.0\.0\.1:\d+: ECONNREFUSED$/m);
    assert.doesNotMatch(reasons, /upstream provider/);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}status-page.png`, fullPage: true });
  } finally {
    await page.close();
  }
});
