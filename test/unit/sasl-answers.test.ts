import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cramMd5Response } from '../support/sasl-answers.js';

/** The test clients' own SASL answers, checked against the RFCs before any test trusts them. */

test('cramMd5Response matches RFC 2195', () => {
  const challenge = Buffer.from('<1896.697170952@postoffice.reston.mci.net>').toString('base64');
  assert.equal(cramMd5Response('tim', 'tanstaaftanstaaf', challenge), 'dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw');
});
