import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClock, type Clock as FakeClock } from '@sinonjs/fake-timers';
import type { DeliverySettings, Rate } from '../../src/config/schema.js';
import { Scheduler, type Verdict } from '../../src/delivery/scheduler.js';
import { DeliveryFailure, type Accepted, type Recipients, type Transport } from '../../src/delivery/transport.js';
import type { MessageRecord } from '../../src/message.js';
import { createLogger } from '../../src/observe/logger.js';
import { newQueueId, SpoolStore } from '../../src/spool/store.js';
import type { LogLine } from '../support/bridge.js';
import { schedulerClock } from '../support/fake-transport.js';
import { waitUntil } from '../support/wait.js';

/*
 * Adaptive concurrency and pacing of the scheduler against a provider played
 * in memory, over a real spool in a temporary directory, on a fake clock:
 * a minute of pacing passes in no time and every send's time is exact.
 */

const START = Date.parse('2026-11-30T12:00:00.000Z');
const SETTINGS: DeliverySettings = {
  sync_wait: 10_000,
  retry_initial: 60_000,
  retry_max: 3_600_000,
  max_age: 5 * 86_400_000,
  shutdown_wait: 1_000,
};

interface Send {
  subject: string;
  at: number;
}

/**
 * A provider that serves at most `sessions` deliveries at once, turning one
 * more down with a 421 before it reads a byte, and answers each delivery it
 * takes after `takesMs` of fake time.
 */
class ProviderInMemory implements Transport {
  readonly accepted: Send[] = [];
  refusals = 0;
  /** While true, every send fails as a connection that was refused. */
  down = false;
  active = 0;
  mostActive = 0;

  constructor(
    private readonly clock: FakeClock,
    readonly concurrency: number,
    private readonly options: { sessions?: number; takesMs?: number; rate?: Rate[] } = {},
  ) {}

  readonly name = 'provider';

  get rate(): Rate[] | undefined {
    return this.options.rate;
  }

  async send(envelope: Recipients, body: () => Readable): Promise<Accepted> {
    if (this.down) throw new DeliveryFailure('temporary', 'connect ECONNREFUSED 127.0.0.1:465', undefined, true);
    if (this.active >= (this.options.sessions ?? Infinity)) {
      this.refusals++;
      throw new DeliveryFailure('temporary', 'CONN: 421 4.7.0 Too many connections', 421, false, this.active);
    }
    const at = this.clock.now;
    this.active++;
    this.mostActive = Math.max(this.mostActive, this.active);
    try {
      const subject = /^Subject: (.*)$/m.exec(await text(body()))![1];
      if (this.options.takesMs) await new Promise((resolve) => this.clock.setTimeout(resolve, this.options.takesMs!));
      this.accepted.push({ subject, at });
      return { response: '250 2.0.0 OK', accepted: envelope.to, refused: [] };
    } finally {
      this.active--;
    }
  }

  async close(): Promise<void> {}
}

interface Harness {
  spool: SpoolStore;
  scheduler: Scheduler;
  logged(msg: string): LogLine[];
  /** Spools `n` messages as intake does and hands each to the scheduler; resolves with what each device heard. */
  submit(n: number): Promise<Verdict[]>;
}

async function harness(t: TestContext, clock: FakeClock, provider: ProviderInMemory): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-pacing-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const spool = new SpoolStore(dir);
  await spool.init();
  const logs: LogLine[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const scheduler = new Scheduler(spool, new Map([[provider.name, provider]]), SETTINGS, logger, undefined, schedulerClock(clock));
  t.after(() => scheduler.stop());
  let counter = 0;
  return {
    spool,
    scheduler,
    logged: (msg) => logs.filter((line) => line.msg === msg),
    async submit(n) {
      const messages = [];
      for (let i = 0; i < n; i++) {
        const record: MessageRecord = {
          conn: { device: 'sensor', clientIp: '192.168.1.20', esmtp: true },
          envelope: {
            originalFrom: 'sensor@example.net',
            sender: 'sensor@example.net',
            to: ['owner@example.com'],
            upstream: provider.name,
            receivedAt: new Date(clock.now).toISOString(),
          },
        };
        const body = Readable.from([Buffer.from(`Subject: reading ${++counter}\r\n\r\nok\r\n`)]);
        messages.push(await spool.write(newQueueId(), Promise.resolve(record), body));
      }
      return Promise.all(messages.map((message) => scheduler.submit(message)));
    },
  };
}

/** Waits in real time (spool writes are real I/O) until `done`. */
const until = (what: string, done: () => boolean): Promise<boolean> => waitUntil(what, done, 20_000, 2);

/** Runs fake time on in `stepMs` steps, letting real I/O catch up between them, until `done`. */
async function runUntil(what: string, clock: FakeClock, done: () => boolean, stepMs = 50): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await clock.tickAsync(stepMs);
    await sleep(1);
  }
}

/** Submits `n` messages and runs fake time until the provider has taken them all; resolves with what the devices heard. */
async function deliverAll(h: Harness, clock: FakeClock, provider: ProviderInMemory, n: number): Promise<Verdict[]> {
  const target = provider.accepted.length + n;
  const heard = h.submit(n);
  await runUntil(`${target} deliveries`, clock, () => provider.accepted.length === target);
  return heard;
}

function assertEachOnce(provider: ProviderInMemory, n: number): void {
  const subjects = provider.accepted.map((send) => send.subject).sort();
  assert.deepEqual(subjects, Array.from({ length: n }, (_, i) => `reading ${i + 1}`).sort());
}

test('against a provider that serves 3 sessions, concurrency settles at 3 after one refusal and every message goes once', async (t) => {
  const clock = createClock(START);
  const provider = new ProviderInMemory(clock, 20, { sessions: 3, takesMs: 100 });
  const h = await harness(t, clock, provider);
  const heard = await deliverAll(h, clock, provider, 60);
  assert.ok(heard.every((verdict) => verdict.status === 'delivered' || verdict.status === 'queued'));
  await until('an empty spool', () => h.logged('attempt finished').length >= 60 + provider.refusals);
  assertEachOnce(provider, 60);

  assert.equal(provider.refusals, 1, 'refused sessions');
  assert.equal(provider.mostActive, 3);
  const lowered = h.logged('upstream concurrency lowered');
  assert.deepEqual(
    lowered.map((line) => [line.upstream, line.was, line.concurrency, line.response]),
    [['provider', 4, 3, 'CONN: 421 4.7.0 Too many connections']],
  );
  assert.deepEqual(h.logged('deferred'), [], 'a refused session is no failed attempt');
  assert.deepEqual(await h.spool.ids(), []);

  // Remembered: another burst within the refusal's memory meets no refusal at all.
  await deliverAll(h, clock, provider, 30);
  assert.equal(provider.refusals, 1);
  assert.equal(provider.mostActive, 3);
});

test('against a provider that takes everything, concurrency grows to the upstream maximum and no further', async (t) => {
  const clock = createClock(START);
  const provider = new ProviderInMemory(clock, 8, { takesMs: 100 });
  const h = await harness(t, clock, provider);
  await deliverAll(h, clock, provider, 100);
  assertEachOnce(provider, 100);
  assert.equal(provider.mostActive, 8);
  assert.deepEqual(
    h.logged('upstream concurrency raised').map((line) => line.concurrency),
    [3, 4, 5, 6, 7, 8],
  );
  assert.deepEqual(h.logged('upstream concurrency lowered'), []);
});

test('with rate 5/1m, a burst of 12 is answered at once and delivered 5, 5 and 2 a minute apart', async (t) => {
  const clock = createClock(START);
  const provider = new ProviderInMemory(clock, 20, { rate: [{ count: 5, per: '1m', window: 60_000 }] });
  const h = await harness(t, clock, provider);
  const heard = await h.submit(12);
  assert.equal(clock.now, START, 'every device heard its reply without waiting for the rate');
  assert.equal(heard.filter((verdict) => verdict.status === 'queued').length >= 7, true);

  // A delivery holds its slot until it has ended (spool writes, real time), so fake time waits for that.
  const ended = (n: number) => until(`${n} ended attempts`, () => h.logged('attempt finished').length === n);
  await ended(5);
  await sleep(50);
  assert.equal(provider.accepted.length, 5, 'a sixth went out within the minute');
  assert.deepEqual(h.logged('upstream rate reached')[0], {
    ...h.logged('upstream rate reached')[0],
    upstream: 'provider',
    rate: '5/1m',
    until: new Date(START + 60_000).toISOString(),
  });

  await clock.tickAsync(60_000 - 1);
  await sleep(50);
  assert.equal(provider.accepted.length, 5, 'a sixth went out within the minute');
  await clock.tickAsync(1);
  await ended(10);
  await clock.tickAsync(60_000);
  await until('12 deliveries', () => provider.accepted.length === 12);

  assert.deepEqual(
    provider.accepted.map((send) => send.at - START),
    [...Array(5).fill(0), ...Array(5).fill(60_000), ...Array(2).fill(120_000)],
  );
  assertEachOnce(provider, 12);
  assert.equal(h.logged('upstream rate reached').length, 2, 'logged once per stretch of waiting');
});

test('an unreachable provider halves the concurrency down to one; it grows again once the provider is back', async (t) => {
  const clock = createClock(START);
  const provider = new ProviderInMemory(clock, 8, { takesMs: 100 });
  const h = await harness(t, clock, provider);
  await deliverAll(h, clock, provider, 60);
  assert.equal(h.logged('upstream concurrency raised').at(-1)?.concurrency, 8);

  provider.down = true;
  await h.submit(8);
  await until('8 deferrals', () => h.logged('deferred').length === 8);
  assert.deepEqual(
    h.logged('upstream concurrency lowered').map((line) => [line.was, line.concurrency, line.response]),
    [
      [8, 4, 'connect ECONNREFUSED 127.0.0.1:465'],
      [4, 2, 'connect ECONNREFUSED 127.0.0.1:465'],
      [2, 1, 'connect ECONNREFUSED 127.0.0.1:465'],
    ],
  );

  provider.down = false;
  const raisedBefore = h.logged('upstream concurrency raised').length;
  await runUntil('the 8 deferred messages', clock, () => provider.accepted.length === 68, 1000);
  assertEachOnce(provider, 68);
  assert.equal(h.logged('upstream concurrency raised')[raisedBefore]?.concurrency, 2, 'growing again from one');
});
