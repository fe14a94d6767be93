import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes a token file as `oauth login` leaves it, so a test can start logged in. */
export async function writeTokenFile(file: string, refreshToken: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, `${JSON.stringify({ refresh_token: refreshToken })}\n`, { mode: 0o600 });
}

export async function readTokenFile(file: string): Promise<{ refresh_token?: string; access_token?: string; expires_at?: string }> {
  return JSON.parse(await readFile(file, 'utf8')) as { refresh_token?: string };
}

/** No access or refresh token the endpoint ever issued appears in any of `outputs` (log lines, command output). */
export function assertNoTokens(outputs: string[], issued: string[]): void {
  assert.ok(issued.length > 0, 'the endpoint issued no tokens, so this check proves nothing');
  const text = outputs.join('\n');
  for (const token of issued) assert.ok(!text.includes(token), `a token appears in the output: ${token.slice(0, 6)}…`);
}
