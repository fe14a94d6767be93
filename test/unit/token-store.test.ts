import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { TokenStore } from '../../src/delivery/oauth/token-store.js';

function store(t: TestContext): TokenStore {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-token-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return new TokenStore(join(dir, 'tokens', 'mail.json'));
}

test('written whole, mode 0600 in a 0700 directory, nothing left beside it', async (t) => {
  const tokens = store(t);
  assert.equal(await tokens.read(), undefined);
  await tokens.write({ refresh_token: 'r1', last_refresh: new Date().toISOString() });
  await tokens.write({ refresh_token: 'r2' });
  assert.equal((await tokens.read())?.refresh_token, 'r2');
  assert.equal(statSync(tokens.file).mode & 0o777, 0o600);
  assert.equal(statSync(join(tokens.file, '..')).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(join(tokens.file, '..')), ['mail.json']);
});

test('notices a file another process put in its place (oauth login), not its own writes', async (t) => {
  const tokens = store(t);
  await tokens.write({ refresh_token: 'r1' });
  assert.equal(await tokens.changed(), false);
  const other = new TokenStore(tokens.file);
  await other.write({ refresh_token: 'from-login' });
  assert.equal(await tokens.changed(), true);
  assert.equal((await tokens.read())?.refresh_token, 'from-login');
  assert.equal(await tokens.changed(), false);
});

test('a damaged file is an error that says what to do, never its content', async (t) => {
  const tokens = store(t);
  await tokens.write({ refresh_token: 'r1' });
  writeFileSync(tokens.file, '{"refresh_token": "secret-value", ');
  await assert.rejects(
    tokens.read(),
    (err: Error) => /is not JSON; run smtp-bridge oauth login again/.test(err.message) && !err.message.includes('secret'),
  );
  writeFileSync(tokens.file, '{"refresh_token": 42}');
  await assert.rejects(tokens.read(), /is damaged; run smtp-bridge oauth login again/);
});

test('the last error lives beside the token file and goes away with clearError', async (t) => {
  const tokens = store(t);
  await tokens.recordError('token endpoint refused: invalid_grant');
  assert.equal((await tokens.lastError())?.error, 'token endpoint refused: invalid_grant');
  await tokens.clearError();
  assert.equal(await tokens.lastError(), undefined);
  assert.equal(await tokens.read(), undefined, 'recording an error must not create a token file');
});
