import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LIMITS_DEFAULTS } from '../../src/config/schema.js';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { captureYaml, SENSOR_DEVICE } from '../support/capture-config.js';
import { LineClient } from '../support/line-client.js';

/**
 * The limits as shipped, with no `limits:` in the config: what issue 9 saw
 * (every idle connection accepted, 10,000 NOOPs answered) must not happen
 * with the defaults either.
 */

let bridge: TestBridge;

before(async () => {
  bridge = await startTestBridge({
    yaml: captureYaml(SENSOR_DEVICE),
  });
});

after(() => bridge?.stop());

test('by default one address gets max_connections_per_ip idle connections and no more', async () => {
  const extra = 20;
  const clients = await Promise.all(
    Array.from({ length: LIMITS_DEFAULTS.max_connections_per_ip + extra }, () =>
      LineClient.connect({ port: bridge.ports.none!, localAddress: '127.0.7.1' }),
    ),
  );
  try {
    const codes = (await Promise.all(clients.map((client) => client.reply(10_000)))).map((reply) => reply?.code);
    assert.equal(codes.filter((code) => code === 220).length, LIMITS_DEFAULTS.max_connections_per_ip);
    assert.equal(codes.filter((code) => code === 421).length, extra);
  } finally {
    for (const client of clients) client.close();
  }
});

test('by default a NOOP flood is answered max_junk_commands times, then closed', async () => {
  const client = await LineClient.connect({ port: bridge.ports.none!, localAddress: '127.0.7.2' });
  assert.equal((await client.reply())?.code, 220);
  client.write('NOOP\r\n'.repeat(LIMITS_DEFAULTS.max_junk_commands * 2));
  const codes: number[] = [];
  for (let reply = await client.reply(); reply; reply = await client.reply(2000)) codes.push(reply.code);
  client.close();
  assert.equal(codes.filter((code) => code === 250).length, LIMITS_DEFAULTS.max_junk_commands);
  assert.equal(codes.at(-1), 421);
});
