import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConcurrencyWindow, INITIAL_CONCURRENCY, REFUSAL_MEMORY_MS } from '../../src/delivery/concurrency-window.js';

/** Accepts `n` deliveries, each with the window full. */
function acceptFull(window: ConcurrencyWindow, n: number, now = 0): void {
  for (let i = 0; i < n; i++) window.accepted(window.limit, now);
}

test('a window starts low and grows by one slot per full round of accepted deliveries', () => {
  const window = new ConcurrencyWindow(20);
  assert.equal(window.limit, INITIAL_CONCURRENCY);
  acceptFull(window, 1);
  assert.equal(window.limit, 2, 'half a round');
  acceptFull(window, 1);
  assert.equal(window.limit, 3);
  acceptFull(window, 3);
  assert.equal(window.limit, 4);
  acceptFull(window, 4 + 5 + 6);
  assert.equal(window.limit, 7);
});

test('a window grows only while every slot is busy', () => {
  const window = new ConcurrencyWindow(20);
  for (let i = 0; i < 100; i++) assert.equal(window.accepted(window.limit - 1, 0), undefined);
  assert.equal(window.limit, INITIAL_CONCURRENCY);
});

test('a window never grows past its maximum, and a maximum below the start is the start', () => {
  const window = new ConcurrencyWindow(5);
  acceptFull(window, 1000);
  assert.equal(window.limit, 5);
  assert.equal(new ConcurrencyWindow(1).limit, 1);
});

test('a refused session drops the window to the sessions still served, and caps it until the refusal is forgotten', () => {
  const window = new ConcurrencyWindow(20);
  acceptFull(window, 200);
  assert.equal(window.limit, 20);
  assert.equal(window.refused(6, 1000), 6);
  acceptFull(window, 1000, 1000 + REFUSAL_MEMORY_MS - 1);
  assert.equal(window.limit, 6, 'probing above the refusal while it is remembered');
  acceptFull(window, 6, 1000 + REFUSAL_MEMORY_MS);
  assert.equal(window.limit, 7, 'growing again once it is forgotten');
});

test('a refusal never raises the window, and never takes it below one', () => {
  const window = new ConcurrencyWindow(20);
  assert.equal(window.refused(10, 0), undefined);
  assert.equal(window.limit, INITIAL_CONCURRENCY);
  assert.equal(window.refused(0, 0), 1);
});

test('an unreachable provider halves the window, down to one', () => {
  const window = new ConcurrencyWindow(20);
  acceptFull(window, 200);
  assert.equal(window.unreachable(), 10);
  assert.equal(window.unreachable(), 5);
  assert.equal(window.unreachable(), 2);
  assert.equal(window.unreachable(), 1);
  assert.equal(window.unreachable(), undefined);
  assert.equal(window.limit, 1);
});

test('a reloaded maximum keeps what was learnt within it', () => {
  const window = new ConcurrencyWindow(20);
  acceptFull(window, 200);
  window.resize(8);
  assert.equal(window.limit, 8);
  acceptFull(window, 100);
  assert.equal(window.limit, 8);
  window.resize(10);
  acceptFull(window, 8);
  assert.equal(window.limit, 9, 'growing again towards the new maximum');
});
