import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Activity } from '../../src/observe/activity.js';
import { AlertConditions } from '../../src/observe/alert-conditions.js';
import type { Alert, AlertEvent } from '../../src/observe/alert.js';
import type { BridgeView, QueueSnapshot } from '../../src/observe/bridge-view.js';
import { createLogger } from '../../src/observe/logger.js';

const SETTINGS = { timeout: 1000, upstream_failing_after: 60_000, queue_age: 3_600_000, webhook: 'http://127.0.0.1:1/' };

/** The conditions over a view whose queue and certificate the test sets; alerts are collected instead of sent. */
function conditions() {
  const sent: AlertEvent[] = [];
  const state: { queue: QueueSnapshot; expiry: Date } = {
    queue: { count: 0, failedCount: 0, latestFailed: [] },
    expiry: new Date(Date.now() + 90 * 86_400_000),
  };
  const view = {
    queue: async () => state.queue,
    certificateExpiry: () => state.expiry,
  } as unknown as BridgeView;
  const alert = { send: (event: AlertEvent) => void sent.push(event) } as unknown as Alert;
  const watcher = new AlertConditions(SETTINGS, alert, view, new Activity(), 'certs/bridge.crt', createLogger('silent'));
  return { sent, state, watcher };
}

test('a queue older than queue_age is one incident until it moves again', async () => {
  const { sent, state, watcher } = conditions();
  await watcher.check();
  assert.equal(sent.length, 0);
  state.queue = { count: 4, failedCount: 0, latestFailed: [], oldestReceivedAt: Date.now() - 2 * 3_600_000 };
  await watcher.check();
  await watcher.check();
  assert.deepEqual(
    sent.map((event) => event.event),
    ['queue-stuck'],
  );
  assert.equal((sent[0] as { messages: number }).messages, 4);
  state.queue = { count: 0, failedCount: 0, latestFailed: [] };
  await watcher.check();
  assert.deepEqual(
    sent.map((event) => event.event),
    ['queue-stuck', 'queue-moving'],
  );
});

test('a certificate within 14 days of its end alerts once, and again when a renewed one is in place', async () => {
  const { sent, state, watcher } = conditions();
  state.expiry = new Date(Date.now() + 3 * 86_400_000);
  await watcher.check();
  await watcher.check();
  assert.deepEqual(
    sent.map((event) => event.event),
    ['certificate-expiring'],
  );
  assert.equal((sent[0] as { cert_file: string }).cert_file, 'certs/bridge.crt');
  state.expiry = new Date(Date.now() + 365 * 86_400_000);
  await watcher.check();
  assert.deepEqual(
    sent.map((event) => event.event),
    ['certificate-expiring', 'certificate-renewed'],
  );
});

test('bounces on one upstream are one incident, closed by the next delivery there', () => {
  const { sent, watcher } = conditions();
  const failed = (queueId: string) =>
    watcher.record({ type: 'failed', device: 'door', upstream: 'isp', queueId, reason: 'bounced', response: '550 no such user' });
  failed('A');
  failed('B');
  failed('C');
  watcher.record({ type: 'delivered', device: 'door', upstream: 'isp', delayMs: 10 });
  watcher.record({ type: 'delivered', device: 'door', upstream: 'isp', delayMs: 10 });
  assert.deepEqual(
    sent.map((event) => event.event),
    ['message-failed', 'messages-delivered-again'],
  );
  assert.equal((sent[1] as { failed: number }).failed, 3);
});
