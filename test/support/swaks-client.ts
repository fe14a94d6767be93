import { runProcess, withTempFile } from './child-process.js';
import {
  credentials,
  DEFAULT_TIMEOUT_MS,
  EHLO_NAME,
  LEGACY_CIPHERS,
  OLD_TLS,
  rejectForce,
  toBuffer,
  verdict,
  type ClientOptions,
  type ClientResult,
} from './client-options.js';

/**
 * Swaks as a device. Swaks adds the line end before the final dot itself and
 * turns LF into CRLF, so one trailing line end is dropped from the file to keep
 * the bytes exact; it also replaces %TOKENS% such as %DATE% in the body.
 */
export async function swaks(opts: ClientOptions): Promise<ClientResult> {
  rejectForce('swaks', opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const body = toBuffer(opts.message)
    .toString('latin1')
    .replace(/\r?\n$/, '');
  const args = ['--server', opts.host, '--port', String(opts.port), '--helo', EHLO_NAME];
  // Half the whole bound per command, so a stalled server is reported by swaks before the kill.
  args.push('--timeout', String(Math.max(1, Math.floor(timeoutMs / 2000))));
  if (opts.security === 'starttls') args.push('--tls');
  if (opts.security === 'implicit') args.push('--tls-on-connect');
  if (opts.tlsVersion) {
    args.push('--tls-protocol', { TLSv1: 'tlsv1', 'TLSv1.1': 'tlsv1_1', 'TLSv1.2': 'tlsv1_2', 'TLSv1.3': 'tlsv1_3' }[opts.tlsVersion]);
    if (OLD_TLS.has(opts.tlsVersion)) args.push('--tls-cipher', LEGACY_CIPHERS);
  }
  if (opts.caFile) args.push('--tls-verify', '--tls-ca-path', opts.caFile);
  if (opts.sourceAddress) args.push('--local-interface', opts.sourceAddress);
  if (opts.mechanism) {
    const { username, password } = credentials(opts);
    args.push('--auth', opts.mechanism, '--auth-user', username, '--auth-password', password);
  }
  args.push('--from', opts.from, '--to', opts.to.join(','));

  const run = await withTempFile(Buffer.from(body, 'latin1'), (file) =>
    runProcess('swaks', [...args, '--data', `@${file}`], '', timeoutMs),
  );
  if (run.spawnError?.code === 'ENOENT') {
    if (process.env.CI) throw new Error('swaks is not installed, and CI must run every client');
    return { ok: false, code: null, transcript: 'swaks not installed', exitCode: null, tlsVersion: null, timedOut: false, skipped: true };
  }
  const transcript = run.stdout + run.stderr;
  const lines = transcript.split('\n');
  // The last QUIT is swaks' own; a body line may read QUIT too. Its 221 is not the verdict.
  const quit = lines.map((line) => /^ [-~]> QUIT\r?$/.test(line)).lastIndexOf(true);
  // Reply lines look like "<-  250 …", "<~  250 …" (inside TLS) or "<~* 535 …" (an error).
  let code: number | null = null;
  let failed: number | null = null;
  for (const line of quit >= 0 ? lines.slice(0, quit) : lines) {
    const m = /^<(\S*)\s+(\d{3}) /.exec(line);
    if (!m) continue;
    code = Number(m[2]);
    if (m[1].includes('*') && failed === null) failed = code;
  }
  return {
    ok: run.exitCode === 0,
    code: verdict(run.exitCode === 0, failed ?? code),
    transcript,
    exitCode: run.exitCode,
    tlsVersion: /TLS started with cipher ([^:\s]+):/.exec(transcript)?.[1] ?? null,
    timedOut: run.timedOut,
  };
}
