import net from 'node:net';
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
import { lastReplyBeforeQuit } from './smtp-reply.js';

/** curl's SMTP client; curl takes EHLO's name from the URL path. */
export async function curlClient(opts: ClientOptions): Promise<ClientResult> {
  rejectForce('curl', opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const host = net.isIPv6(opts.host) ? `[${opts.host}]` : opts.host;
  const scheme = opts.security === 'implicit' ? 'smtps' : 'smtp';
  const args = ['--silent', '--show-error', '--verbose', '--url', `${scheme}://${host}:${opts.port}/${EHLO_NAME}`];
  args.push('--max-time', String(Math.max(1, Math.floor(timeoutMs / 1000) - 1)));
  if (opts.security === 'starttls') args.push('--ssl-reqd');
  if (opts.tlsVersion) {
    const v = { TLSv1: '1.0', 'TLSv1.1': '1.1', 'TLSv1.2': '1.2', 'TLSv1.3': '1.3' }[opts.tlsVersion];
    args.push(`--tlsv${v}`, '--tls-max', v);
    if (OLD_TLS.has(opts.tlsVersion)) args.push('--ciphers', LEGACY_CIPHERS);
  }
  if (opts.sourceAddress) args.push('--interface', opts.sourceAddress);
  if (opts.security !== 'none') args.push(...(opts.caFile ? ['--cacert', opts.caFile] : ['--insecure']));
  if (opts.mechanism) {
    const { username, password } = credentials(opts);
    args.push('--login-options', `AUTH=${opts.mechanism}`, '--user', `${username}:${password}`);
  }
  args.push('--mail-from', opts.from, ...opts.to.flatMap((r) => ['--mail-rcpt', r]));

  const run = await withTempFile(toBuffer(opts.message), (file) => runProcess('curl', [...args, '--upload-file', file], '', timeoutMs));
  const transcript = run.stderr + run.stdout;
  return {
    ok: run.exitCode === 0,
    code: verdict(run.exitCode === 0, lastReplyBeforeQuit(transcript, '< ', '> QUIT')),
    transcript,
    exitCode: run.exitCode,
    tlsVersion: /SSL connection using (\S+) /.exec(transcript)?.[1] ?? null,
    timedOut: run.timedOut,
  };
}
