import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { LineClient } from '../support/line-client.js';
import { CLI } from '../support/cli.js';
import { saslVectors as vectors } from '../support/vectors.js';

const exec = promisify(execFile);
const cli = (...args: string[]) => exec(process.execPath, [CLI, 'auth-response', ...args], { timeout: 20_000 });

let bridge: TestBridge;

before(async () => {
  bridge = await startTestBridge({
    yaml: `upstreams:
  capture: { type: directory, path: captured }
devices:
  scanner: { password: "scan ner", mechanisms: [CRAM-MD5, DIGEST-MD5], senders: ["@example.net"], upstream: capture }
`,
  });
});

after(() => bridge?.stop());

test('the auth-response command prints the vector answers alone on stdout', async () => {
  const [cram] = vectors.cram_md5;
  const out = await cli('cram-md5', cram.username, cram.password, cram.challenge_base64);
  assert.equal(out.stdout, `${cram.expected_response_base64}\n`);
  assert.match(out.stderr, new RegExp(cram.expected_digest_hex));
  assert.doesNotMatch(out.stderr + out.stdout, new RegExp(cram.password));
});

test('auth-response answers a live bridge challenge for CRAM-MD5 and DIGEST-MD5 as a person pasting would', async () => {
  for (const mechanism of ['CRAM-MD5', 'DIGEST-MD5']) {
    const client = await LineClient.connect({ port: bridge.ports.implicit!, tls: true });
    try {
      assert.equal((await client.reply())?.code, 220);
      assert.equal((await client.command('EHLO person.lan'))?.code, 250);
      const challenge = await client.command(`AUTH ${mechanism}`);
      assert.equal(challenge?.code, 334);
      const answer = await cli(mechanism.toLowerCase(), 'scanner', 'scan ner', challenge!.text.trim());
      const reply = await client.command(answer.stdout.trim());
      if (mechanism === 'DIGEST-MD5') {
        assert.equal(reply?.code, 334);
        const rspauth = /expect rspauth\s+(\S+)/.exec(answer.stderr)?.[1];
        assert.equal(Buffer.from(reply!.text.trim(), 'base64').toString(), `rspauth=${rspauth}`);
        assert.equal((await client.command(''))?.code, 235);
      } else assert.equal(reply?.code, 235, reply?.text);
    } finally {
      client.close();
    }
  }
});

test('auth-response without four arguments is a usage error', async () => {
  await assert.rejects(cli('cram-md5', 'user'), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /usage: smtp-bridge auth-response/);
    return true;
  });
});
