import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pace } from '../../src/delivery/pace.js';

const perMinute = (count: number) => ({ count, per: '1m', window: 60_000 });

test('a burst up to the count starts at once; the next waits until a window after the first ended', () => {
  const pace = new Pace([perMinute(3)]);
  for (let i = 0; i < 3; i++) {
    assert.equal(pace.readyAt(0), 0);
    pace.started();
  }
  assert.equal(pace.readyAt(0), Infinity, 'all three still running: only an end can free a slot');
  pace.ended(5_000);
  pace.ended(7_000);
  assert.equal(pace.readyAt(7_000), 65_000);
  assert.equal(pace.readyAt(65_000), 65_000);
  pace.started();
  assert.equal(pace.readyAt(65_000), 67_000);
});

test('a slow delivery holds its slot for the whole delivery and a window after it', () => {
  const pace = new Pace([perMinute(1)]);
  pace.started();
  assert.equal(pace.readyAt(50_000), Infinity);
  pace.ended(50_000);
  assert.equal(pace.readyAt(50_000), 110_000, 'the provider saw it as late as 50 s: a minute from then');
});

test('every rate of a list holds', () => {
  const pace = new Pace([perMinute(5), { count: 6, per: '1h', window: 3_600_000 }]);
  for (let i = 0; i < 5; i++) {
    pace.started();
    pace.ended(0);
  }
  assert.equal(pace.readyAt(60_000), 60_000);
  pace.started();
  pace.ended(60_000);
  assert.equal(pace.readyAt(120_000), 3_600_000, 'six within the hour');
  assert.equal(pace.toString(), '5/1m, 6/1h');
});
