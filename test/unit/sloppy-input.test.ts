import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withoutEncodedLineEnd } from '../../src/inbound/sasl/sloppy-response.js';
import { repairAddressCommand } from '../../src/inbound/sloppy-address.js';

const b64 = (text: string) => Buffer.from(text, 'latin1').toString('base64');

test('SASL responses lose the CR/LF that `echo | base64` put inside them, and nothing else', () => {
  assert.equal(withoutEncodedLineEnd(b64('user\n')), b64('user'));
  assert.equal(withoutEncodedLineEnd(`${b64('\0user\0pass\r\n')}  \r`), b64('\0user\0pass'));
  assert.equal(withoutEncodedLineEnd(b64('user')), undefined, 'nothing to take out');
  assert.equal(withoutEncodedLineEnd(b64('pass word ')), undefined, 'a trailing space may be part of a password');
  assert.equal(withoutEncodedLineEnd(b64('\n')), '', 'an encoded lone line end becomes the empty response');
  assert.equal(withoutEncodedLineEnd('*'), undefined, 'the abort line is left to smtp-server');
  assert.equal(withoutEncodedLineEnd('not base64!'), undefined);
  const binary = Buffer.from([0xff, 0x00, 0x80, 0x0a]);
  assert.deepEqual(Buffer.from(withoutEncodedLineEnd(binary.toString('base64'))!, 'base64'), binary.subarray(0, 3));
});

test('MAIL FROM / RCPT TO: missing angle brackets and trailing dots in the local part are repaired', () => {
  assert.deepEqual(repairAddressCommand('MAIL FROM:user@example.com'), {
    command: 'MAIL FROM:<user@example.com>',
    localPart: undefined,
    sloppiness: ['no angle brackets'],
  });
  assert.deepEqual(repairAddressCommand('rcpt to: user@example.com NOTIFY=NEVER'), {
    command: 'rcpt to: <user@example.com> NOTIFY=NEVER',
    localPart: undefined,
    sloppiness: ['no angle brackets'],
  });
  assert.deepEqual(repairAddressCommand('MAIL FROM:<ilo.@example.com> SIZE=10'), {
    command: 'MAIL FROM:<ilo@example.com> SIZE=10',
    localPart: 'ilo.',
    sloppiness: ['local part ends in a dot'],
  });
  assert.deepEqual(repairAddressCommand('RCPT TO:admin..@example.com'), {
    command: 'RCPT TO:<admin@example.com>',
    localPart: 'admin..',
    sloppiness: ['no angle brackets', 'local part ends in a dot'],
  });
  assert.deepEqual(repairAddressCommand('RCPT TO:postmaster'), {
    command: 'RCPT TO:<postmaster>',
    localPart: undefined,
    sloppiness: ['no angle brackets'],
  });
});

test('address commands with nothing of the sort to repair are left to smtp-server', () => {
  assert.equal(repairAddressCommand('MAIL FROM:<user@example.com>'), undefined);
  assert.equal(repairAddressCommand('MAIL FROM:<>'), undefined);
  assert.equal(repairAddressCommand('MAIL FROM:'), undefined);
  assert.equal(repairAddressCommand('MAIL FROM:<user@example.com'), undefined);
  assert.equal(repairAddressCommand('MAIL FROM user@example.com'), undefined);
  assert.equal(repairAddressCommand('RCPT TO:<.@example.com>'), undefined, 'a local part of dots alone stays wrong');
});
