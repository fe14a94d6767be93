import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { createClock, type Clock as FakeClock } from '@sinonjs/fake-timers';
import type { DeliverySettings } from '../../src/config/schema.js';
import { Scheduler, type DeviceHold } from '../../src/delivery/scheduler.js';
import { DeliveryFailure } from '../../src/delivery/transport.js';
import { createLogger } from '../../src/observe/logger.js';
import { newQueueId, SpoolStore, type SpooledMessage } from '../../src/spool/store.js';
import type { LogLine } from '../support/bridge.js';
import { acceptAll, FakeTransport, schedulerClock, temporaryFailure } from '../support/fake-transport.js';
import { waitUntil } from '../support/wait.js';

/*
 * The scheduler against upstreams that answer as each test says, a real spool
 * in a temporary directory, and a fake clock: hours of backoff pass in no
 * time, and every attempt's time is exact.
 */

const START = Date.parse('2026-11-30T12:00:00.000Z');
const MINUTE = 60_000;
const SETTINGS: DeliverySettings = {
  sync_wait: 10_000,
  retry_initial: MINUTE,
  retry_max: 60 * MINUTE,
  max_age: 5 * 24 * 60 * MINUTE,
  shutdown_wait: 1_000,
};

interface Harness {
  spool: SpoolStore;
  scheduler: Scheduler;
  /** Writes a message to the spool as intake does, received now. */
  spoolMessage(options?: { device?: string; upstream?: string; to?: string[] }): Promise<SpooledMessage>;
  /** Moves fake time on by `ms`, running the timers due meanwhile and what they start. */
  advance(ms: number): Promise<void>;
  /** Waits until `n` delivery attempts have finished: their spool writes take real time. */
  attemptsFinished(n: number): Promise<void>;
  logged(msg: string): LogLine[];
}

/** Lets the promise chains the last timer or answer started run, up to their next real I/O. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function harness(
  t: TestContext,
  clock: FakeClock,
  transports: FakeTransport[],
  { hold, ...settings }: Partial<DeliverySettings> & { hold?: DeviceHold } = {},
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-scheduler-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const spool = new SpoolStore(dir);
  await spool.init();
  const logs: LogLine[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const byName = new Map(transports.map((transport) => [transport.name, transport]));
  const scheduler = new Scheduler(spool, byName, { ...SETTINGS, ...settings }, logger, hold, schedulerClock(clock));
  const logged = (msg: string) => logs.filter((line) => line.msg === msg);
  let counter = 0;
  return {
    spool,
    scheduler,
    logged,
    spoolMessage({ device = 'sensor', upstream = 'provider', to = ['owner@example.com'] } = {}) {
      const receivedAt = new Date(clock.now).toISOString();
      const from = `${device}@example.net`;
      const record = {
        conn: { device, clientIp: '192.168.1.20', esmtp: true },
        envelope: { originalFrom: from, sender: from, to, upstream, receivedAt },
      };
      return spool.write(
        newQueueId(),
        Promise.resolve(record),
        Readable.from([Buffer.from(`Subject: reading ${++counter}\r\n\r\nok\r\n`)]),
      );
    },
    async advance(ms) {
      await clock.tickAsync(ms);
      await turn();
    },
    async attemptsFinished(n) {
      await waitUntil(`${n} finished attempts`, () => logged('attempt finished').length >= n, 10_000, 0);
      await turn();
    },
  };
}

test('a deferred message is tried again after retry_initial, then after doubling delays (±10 %) up to retry_max', async (t) => {
  const clock = createClock(START);
  const provider = new FakeTransport('provider', 1, clock, (send, n) => (n <= 4 ? temporaryFailure() : acceptAll(send)));
  const h = await harness(t, clock, [provider], { retry_initial: MINUTE, retry_max: 4 * MINUTE });
  const message = await h.spoolMessage();
  assert.deepEqual(await h.scheduler.submit(message), { status: 'queued', id: message.id });

  for (const [attempt, base] of [
    [1, MINUTE],
    [2, 2 * MINUTE],
    [3, 4 * MINUTE],
    [4, 4 * MINUTE],
  ]) {
    await h.attemptsFinished(attempt);
    const deferred = h.logged('deferred').find((line) => line.attempt === attempt);
    assert.ok(deferred, `attempt ${attempt} was not deferred`);
    const next = Date.parse(String(deferred.next_attempt));
    const delay = next - provider.sends[attempt - 1].at;
    assert.ok(delay >= 0.9 * base && delay <= Math.min(1.1 * base, 4 * MINUTE), `delay ${delay} ms after attempt ${attempt}`);
    const { state } = (await h.spool.read(message.id))!;
    assert.equal(state.attempts, attempt);
    assert.equal(state.nextAttemptAt, deferred.next_attempt);
    assert.equal(state.lastError, '451 4.3.0 Try again later');

    await h.advance(next - clock.now - 1);
    assert.equal(provider.sends.length, attempt, `attempt ${attempt + 1} came early`);
    await h.advance(1);
    await h.attemptsFinished(attempt + 1);
    assert.equal(provider.sends[attempt].at, next);
  }
  const [delivered] = h.logged('delivered');
  assert.equal(delivered.attempt, 5);
  assert.deepEqual(await h.spool.ids(), []);
  assert.equal(existsSync(h.spool.path('queue', message.id, 'state')), false);
});

test('a message still deferred at max_age moves to the failed area, logged "expired", and is never tried again', async (t) => {
  const clock = createClock(START);
  const provider = new FakeTransport('provider', 1, clock, () => temporaryFailure());
  const h = await harness(t, clock, [provider], { retry_initial: MINUTE, retry_max: 10 * MINUTE, max_age: 30 * MINUTE });
  const message = await h.spoolMessage();
  await h.scheduler.submit(message);
  for (let attempt = 1; h.logged('expired').length === 0; attempt++) {
    assert.ok(attempt < 20, 'the message never expired');
    const { state } = (await h.spool.read(message.id))!;
    await h.advance(Date.parse(state.nextAttemptAt) - clock.now);
    await h.attemptsFinished(attempt + 1);
  }
  const attempts = provider.sends.length;
  const [last, beforeLast] = [provider.sends[attempts - 1].at, provider.sends[attempts - 2].at];
  assert.ok(beforeLast - START < 30 * MINUTE && last - START >= 30 * MINUTE, 'expired at the first attempt past max_age');
  const [expired] = h.logged('expired');
  assert.equal(expired.level, 'error');
  assert.equal(expired.attempt, attempts);
  assert.deepEqual(await h.spool.ids('queue'), []);
  const failed = (await h.spool.read(message.id, 'failed'))!;
  assert.equal(failed.state.reason, `expired after ${attempts} attempts: 451 4.3.0 Try again later`);
  assert.equal(failed.state.failedAt, new Date(last).toISOString());
  await h.advance(24 * 60 * MINUTE);
  assert.equal(provider.sends.length, attempts, 'an expired message was tried again');
});

test('each upstream runs at most `concurrency` deliveries at once, independently of the others', async (t) => {
  const clock = createClock(START);
  const big = new FakeTransport('big', 2, clock);
  const small = new FakeTransport('small', 1, clock);
  const h = await harness(t, clock, [big, small]);
  for (let i = 0; i < 5; i++) await h.spoolMessage({ upstream: 'big' });
  for (let i = 0; i < 3; i++) await h.spoolMessage({ upstream: 'small' });
  await h.scheduler.start();
  await turn();
  assert.equal(big.sends.length, 2);
  assert.equal(small.sends.length, 1);

  // A device handing over a message for a busy upstream hears "queued" at once.
  const fresh = await h.spoolMessage({ upstream: 'small' });
  assert.deepEqual(await h.scheduler.submit(fresh), { status: 'queued', id: fresh.id });
  assert.equal(small.sends.length, 1);

  // Each finished delivery frees its slot for the next message of its upstream, and only that.
  let finished = 0;
  for (let next = big.waiting[0] ?? small.waiting[0]; next; next = big.waiting[0] ?? small.waiting[0]) {
    next.answer(acceptAll(next));
    await h.attemptsFinished(++finished);
    assert.ok(big.active <= 2 && small.active <= 1);
    assert.equal(big.active, Math.min(2, 5 - big.sends.filter((send) => send.answered).length));
  }
  assert.equal(big.sends.length, 5);
  assert.equal(small.sends.length, 4);
  assert.equal(big.mostActive, 2);
  assert.equal(small.mostActive, 1);
  assert.deepEqual(await h.spool.ids(), []);
});

test("a held (frozen) device's messages wait untouched while others go out, and go once the hold is lifted", async (t) => {
  const clock = createClock(START);
  const provider = new FakeTransport('provider', 2, clock, acceptAll);
  const held = new Set(['doorphone']);
  const h = await harness(t, clock, [provider], { hold: { isHeld: (device) => held.has(device) } });
  const waiting = await h.spoolMessage({ device: 'doorphone' });
  await h.spoolMessage({ device: 'printer' });
  await h.scheduler.start();
  await h.attemptsFinished(1);
  assert.deepEqual(
    provider.sends.map((send) => send.sender),
    ['printer@example.net'],
  );

  const handed = await h.spoolMessage({ device: 'doorphone' });
  assert.deepEqual(await h.scheduler.submit(handed), { status: 'queued', id: handed.id });
  await h.advance(10 * MINUTE);
  assert.equal(provider.sends.length, 1, 'a held message was sent');
  for (const id of [waiting.id, handed.id]) {
    assert.equal((await h.spool.read(id))!.state.attempts, 0);
    assert.equal(existsSync(h.spool.path('queue', id, 'state')), false, 'a held message was touched');
  }

  held.delete('doorphone');
  await h.advance(MINUTE);
  await h.attemptsFinished(3);
  assert.deepEqual(provider.sends.map((send) => send.sender).sort(), [
    'doorphone@example.net',
    'doorphone@example.net',
    'printer@example.net',
  ]);
  assert.deepEqual(await h.spool.ids(), []);
});

test("kick: an operator's retry is tried at once, and outranks the upstream's backoff", async (t) => {
  const clock = createClock(START);
  const provider = new FakeTransport('provider', 2, clock, (send, n) => (n === 1 ? temporaryFailure(true) : acceptAll(send)));
  const h = await harness(t, clock, [provider], { retry_initial: 10 * MINUTE, retry_max: 60 * MINUTE });
  const first = await h.spoolMessage();
  assert.deepEqual(await h.scheduler.submit(first), { status: 'queued', id: first.id });
  // The upstream could not be reached: it backs off, and a new message for it waits without a try.
  const second = await h.spoolMessage();
  assert.deepEqual(await h.scheduler.submit(second), { status: 'queued', id: second.id });
  await h.advance(MINUTE);
  assert.equal(provider.sends.length, 1);

  // What `smtp-bridge queue retry ID` does: the message is due now, then the server is kicked.
  const retried = (await h.spool.read(first.id))!;
  retried.state.nextAttemptAt = new Date(clock.now).toISOString();
  await h.spool.saveState(retried);
  await h.scheduler.kicked();
  await h.attemptsFinished(3);
  assert.deepEqual(
    provider.sends.slice(1).map((send) => send.at),
    [START + MINUTE, START + MINUTE],
  );
  assert.deepEqual(await h.spool.ids(), []);
});

test('partial recipient results: accepted recipients are never sent again, a 5xx bounces its recipient, a 4xx is retried alone', async (t) => {
  const clock = createClock(START);
  const provider = new FakeTransport('provider', 1, clock, (send, n) =>
    n === 1
      ? {
          response: '250 2.0.0 OK',
          accepted: ['now@example.org'],
          refused: [
            { address: 'later@example.org', code: 450, response: '450 4.2.1 Mailbox busy' },
            { address: 'never@example.org', code: 550, response: '550 5.1.1 No such user' },
          ],
        }
      : acceptAll(send),
  );
  const h = await harness(t, clock, [provider]);
  const to = ['now@example.org', 'later@example.org', 'never@example.org'];
  const message = await h.spoolMessage({ to });
  // Someone is still pending: the device hears "queued", not the partial verdict.
  assert.deepEqual(await h.scheduler.submit(message), { status: 'queued', id: message.id });
  assert.deepEqual(h.logged('delivered')[0].to, ['now@example.org']);
  assert.equal(h.logged('bounced')[0].to, 'never@example.org');
  assert.deepEqual(h.logged('deferred')[0].to, ['later@example.org']);
  const { state } = (await h.spool.read(message.id))!;
  assert.deepEqual(state.delivered, ['now@example.org']);
  assert.deepEqual(state.refused, [{ address: 'never@example.org', response: '550 5.1.1 No such user' }]);

  await h.advance(Date.parse(state.nextAttemptAt) - clock.now);
  await h.attemptsFinished(2);
  assert.deepEqual(
    provider.sends.map((send) => send.to),
    [to, ['later@example.org']],
  );
  // Everyone is settled and one was refused for good: the message is kept in the failed area, saying why.
  assert.deepEqual(await h.spool.ids(), []);
  const failed = (await h.spool.read(message.id, 'failed'))!;
  assert.deepEqual(failed.state.delivered, ['now@example.org', 'later@example.org']);
  assert.equal(failed.state.reason, 'never@example.org: 550 5.1.1 No such user');
});

test('what the device hears: the provider verdict within sync_wait, "queued" after it, and the message still goes', async (t) => {
  const clock = createClock(START);
  const provider = new FakeTransport('provider', 1, clock);
  const h = await harness(t, clock, [provider], { sync_wait: 5_000 });

  const accepted = await h.spoolMessage();
  const heardAccepted = h.scheduler.submit(accepted);
  await turn();
  provider.sends[0].answer(acceptAll(provider.sends[0]));
  assert.deepEqual(await heardAccepted, { status: 'delivered', response: '250 2.0.0 OK' });

  const refused = await h.spoolMessage();
  const heardRefused = h.scheduler.submit(refused);
  await turn();
  provider.sends[1].answer(new DeliveryFailure('permanent', '550 5.7.1 Relaying denied', 550));
  assert.deepEqual(await heardRefused, { status: 'refused', code: 550, response: '550 5.7.1 Relaying denied' });
  assert.ok(await h.spool.read(refused.id, 'failed'), 'a refused message is kept in the failed area');

  const slow = await h.spoolMessage();
  const heardSlow = h.scheduler.submit(slow);
  await turn();
  assert.equal(provider.sends.length, 3);
  await h.advance(5_000);
  assert.deepEqual(await heardSlow, { status: 'queued', id: slow.id });
  provider.sends[2].answer(acceptAll(provider.sends[2]));
  await h.attemptsFinished(3);
  assert.deepEqual(await h.spool.ids(), []);
  assert.equal(provider.sends.length, 3, 'a message the device heard "queued" for was sent twice');
});
