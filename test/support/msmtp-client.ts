import { runProcess } from './child-process.js';
import {
  credentials,
  DEFAULT_TIMEOUT_MS,
  EHLO_NAME,
  rejectForce,
  toBuffer,
  verdict,
  type ClientOptions,
  type ClientResult,
  type TlsVersion,
} from './client-options.js';
import { lastReplyBeforeQuit } from './smtp-reply.js';

const GNUTLS_VERSIONS: Record<TlsVersion, string> = { TLSv1: 'TLS1.0', 'TLSv1.1': 'TLS1.1', 'TLSv1.2': 'TLS1.2', 'TLSv1.3': 'TLS1.3' };

/**
 * msmtp (GnuTLS and GNU SASL underneath) as a device, set up on the command
 * line alone; --file=/dev/null keeps any ~/.msmtprc out. msmtp would add
 * From, Date and Message-ID headers: switched off to keep the bytes exact.
 */
export async function msmtpClient(opts: ClientOptions): Promise<ClientResult> {
  rejectForce('msmtp', opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const args = ['--file=/dev/null', '--debug', `--host=${opts.host}`, `--port=${opts.port}`, `--domain=${EHLO_NAME}`];
  args.push(`--timeout=${Math.max(1, Math.floor(timeoutMs / 2000))}`, `--from=${opts.from}`);
  args.push('--set-from-header=off', '--set-date-header=off', '--set-msgid-header=off');
  args.push(`--tls=${opts.security === 'none' ? 'off' : 'on'}`, `--tls-starttls=${opts.security === 'starttls' ? 'on' : 'off'}`);
  if (opts.tlsVersion) args.push(`--tls-priorities=NORMAL:-VERS-ALL:+VERS-${GNUTLS_VERSIONS[opts.tlsVersion]}`);
  args.push(opts.caFile ? `--tls-trust-file=${opts.caFile}` : '--tls-certcheck=off');
  if (opts.sourceAddress) args.push(`--source-ip=${opts.sourceAddress}`);
  if (opts.mechanism) {
    const { username, password } = credentials(opts);
    // msmtp takes a password only from a file, a keyring, a prompt or a command.
    args.push(
      `--auth=${opts.mechanism.toLowerCase()}`,
      `--user=${username}`,
      `--passwordeval=printf '%s' '${password.replace(/'/g, `'\\''`)}'`,
    );
  } else {
    args.push('--auth=off');
  }
  const run = await runProcess('msmtp', [...args, '--', ...opts.to], toBuffer(opts.message), timeoutMs);
  const transcript = run.stdout + run.stderr;
  const gnutlsVersion = /^\s*\((TLS1\.\d)\)-/m.exec(transcript)?.[1];
  return {
    ok: run.exitCode === 0,
    code: verdict(run.exitCode === 0, lastReplyBeforeQuit(transcript, '<-- ', '--> QUIT')),
    transcript,
    exitCode: run.exitCode,
    tlsVersion: (Object.keys(GNUTLS_VERSIONS) as TlsVersion[]).find((v) => GNUTLS_VERSIONS[v] === gnutlsVersion) ?? null,
    timedOut: run.timedOut,
  };
}
