import { readFileSync } from 'node:fs';

/** The known-good SASL computations (test/fixtures/sasl-vectors.json, with their sources), typed. */
export interface CramMd5Vector {
  username: string;
  password: string;
  challenge_base64: string;
  challenge: string;
  expected_digest_hex: string;
  expected_response_base64: string;
}

export interface DigestMd5Vector {
  username: string;
  realm: string;
  password: string;
  nonce: string;
  cnonce: string;
  nc: string;
  qop: string;
  digest_uri: string;
  expected_h_user_realm_pass_hex: string;
  expected_ha1_hex: string;
  expected_response: string;
  expected_rspauth: string;
  client_response_base64: string;
}

export const saslVectors = JSON.parse(readFileSync(new URL('../../../test/fixtures/sasl-vectors.json', import.meta.url), 'utf8')) as {
  cram_md5: CramMd5Vector[];
  digest_md5: DigestMd5Vector[];
};
