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

test('a limit of zero, past its ceiling, a fraction, or a timeout a timer cannot hold is refused, naming the key', () => {
  for (const [limits, key] of [
    [{ max_connections: 0 }, 'max_connections'],
    [{ max_connections_per_ip: 1e9 }, 'max_connections_per_ip'],
    [{ max_junk_commands: 2.5 }, 'max_junk_commands'],
    [{ max_errors: -1 }, 'max_errors'],
    [{ line_timeout: 0 }, 'line_timeout'],
    // Beyond 2^31-1 ms setTimeout would fire at once and close every session.
    [{ session_timeout: '30d' }, 'session_timeout'],
    [{ max_sessions: 3 }, ''],
  ] as const) {
    const found = problems(limits);
    assert.equal(found.length, 1, `${JSON.stringify(limits)}: ${found.join('; ')}`);
    assert.ok(found[0].startsWith(`limits${key ? `.${key}` : ''}: `), found[0]);
  }
  assert.deepEqual(problems({ line_timeout: 0 }), ['limits.line_timeout: must be between 1ms and 1d']);
});
