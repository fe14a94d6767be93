import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';

const withLimits = (limits: Record<string, unknown>) =>
  configSchema.safeParse({ listen: [{ port: 25, tls: 'none' }], upstreams: {}, devices: {}, limits });

const problems = (limits: Record<string, unknown>) =>
  (withLimits(limits).error?.issues ?? []).map((issue) => `${issue.path.join('.')}: ${issue.message}`);

test('limits take durations with units and whole counts', () => {
  const parsed = withLimits({ line_timeout: '30s', session_timeout: '2h', max_connections: 10, max_errors: 5 });
  assert.ok(parsed.success);
  assert.deepEqual(parsed.data.limits, {
    max_connections: 10,
    max_connections_per_ip: 100,
    line_timeout: 30_000,
    session_timeout: 7_200_000,
    max_junk_commands: 100,
    max_errors: 5,
  });
});

test('a limit of zero, a fraction, or a timeout a timer cannot hold is refused, naming the key', () => {
  assert.deepEqual(problems({ max_connections: 0 }), ['limits.max_connections: must be at least 1']);
  assert.deepEqual(problems({ max_connections_per_ip: 2.5 }), ['limits.max_connections_per_ip: must be a whole number']);
  assert.deepEqual(problems({ line_timeout: 0 }), ['limits.line_timeout: must be between 1ms and 1d']);
  // Beyond 2^31-1 ms setTimeout would fire at once and close every session.
  assert.deepEqual(problems({ session_timeout: '30d' }), ['limits.session_timeout: must be between 1ms and 1d']);
  assert.deepEqual(problems({ max_sessions: 3 }).length, 1, 'unknown keys are errors');
});
