import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { SMTP_SERVER_INTERNALS } from '../../src/inbound/connection.js';
import { REPO_ROOT } from '../support/cli.js';

const require = createRequire(import.meta.url);
const pinned = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies[
  'smtp-server'
];
const installed = (require('smtp-server/package.json') as { version: string }).version;

test('smtp-server is pinned to an exact version, and that version is the one installed', () => {
  assert.match(pinned, /^\d+\.\d+\.\d+$/, 'package.json must pin smtp-server exactly: the connection subclass relies on its internals');
  assert.equal(installed, pinned);
});

for (const [owner, prototype, methods] of [
  ['SMTPConnection', SMTPConnection.prototype, SMTP_SERVER_INTERNALS.connection],
  ['SMTPServer', SMTPServer.prototype, SMTP_SERVER_INTERNALS.server],
  ['SMTPStream', SMTPStream.prototype, SMTP_SERVER_INTERNALS.stream],
] as const) {
  test(`every ${owner} method the bridge overrides or calls still exists with the same arity`, () => {
    for (const [name, arity] of Object.entries(methods)) {
      const method = (prototype as unknown as Record<string, unknown>)[name];
      assert.equal(
        typeof method,
        'function',
        `smtp-server ${installed}: ${owner}.prototype.${name} is gone; see src/inbound/connection.ts`,
      );
      assert.equal(
        (method as (...args: unknown[]) => unknown).length,
        arity,
        `smtp-server ${installed}: ${owner}.${name} changed its parameters`,
      );
    }
  });
}

test('the instance fields the bridge reads are still set by smtp-server', () => {
  for (const [owner, source, fields] of [
    ['SMTPConnection', SMTPConnection.toString(), SMTP_SERVER_INTERNALS.connectionFields],
    ['SMTPServer', SMTPServer.toString(), SMTP_SERVER_INTERNALS.serverFields],
    ['SMTPStream', SMTPStream.toString(), SMTP_SERVER_INTERNALS.streamFields],
  ] as const) {
    for (const field of fields) {
      assert.match(source, new RegExp(`this\\.${field}\\s*=`), `smtp-server ${installed}: ${owner} no longer sets ${field}`);
    }
  }
});

test('init still waits a fixed delay before connectionReady: the behaviour our init override replaces', () => {
  const init = SMTPConnection.prototype.init.toString();
  assert.match(init, /_setListeners\(/);
  assert.match(init, /setTimeout\(\(\) => this\.connectionReady\(\), \d+\)/);
});

test('a command before the greeting still gets "You talk too soon": the behaviour our _onCommand override replaces', () => {
  assert.match(SMTPConnection.prototype._onCommand.toString(), /if \(!this\._ready\)[\s\S]*You talk too soon/);
});
