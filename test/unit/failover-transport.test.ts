import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { createClock } from '@sinonjs/fake-timers';
import { FailoverTransport } from '../../src/delivery/failover-transport.js';
import { DeliveryFailure } from '../../src/delivery/transport.js';
import { acceptAll, FakeTransport } from '../support/fake-transport.js';

const envelope = { sender: 'sensor@example.net', to: ['owner@example.com'] };
const body = () => Readable.from([Buffer.from('Subject: reading\r\n\r\nok\r\n')]);

test('a primary at its session limit keeps the message: the 421 goes to the scheduler, not to the fallback', async () => {
  const clock = createClock();
  const refusal = new DeliveryFailure('temporary', 'CONN: 421 4.7.0 Too many connections', 421, false, 3);
  const primary = new FakeTransport('m365', 20, clock, () => refusal);
  const fallback = new FakeTransport('gmail', 20, clock, acceptAll);
  const failover = new FailoverTransport(primary, [fallback]);
  await assert.rejects(failover.send(envelope, body), (err) => err === refusal);
  assert.equal(fallback.sends.length, 0);
});

test('a 421 with none of our sessions open is the primary refusing service: the fallback takes the message', async () => {
  const clock = createClock();
  const primary = new FakeTransport(
    'm365',
    20,
    clock,
    () => new DeliveryFailure('temporary', 'CONN: 421 4.3.2 Service not available', 421, false, 0),
  );
  const fallback = new FakeTransport('gmail', 20, clock, acceptAll);
  const accepted = await new FailoverTransport(primary, [fallback]).send(envelope, body);
  assert.equal(accepted.via, 'gmail');
});

test('an upstream with fallbacks keeps its own concurrency maximum and rate', () => {
  const clock = createClock();
  const rate = [{ count: 30, per: '1m', window: 60_000 }];
  const primary = Object.assign(new FakeTransport('m365', 3, clock), { rate });
  const failover = new FailoverTransport(primary, [new FakeTransport('gmail', 20, clock)]);
  assert.equal(failover.concurrency, 3);
  assert.deepEqual(failover.rate, rate);
});
