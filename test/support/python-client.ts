import { runProcess } from './child-process.js';
import { supportScript } from './cli.js';
import {
  credentials,
  DEFAULT_TIMEOUT_MS,
  EHLO_NAME,
  LEGACY_CIPHERS,
  toBuffer,
  verdict,
  type ClientOptions,
  type ClientResult,
} from './client-options.js';
import { replyLines } from './smtp-reply.js';

const SMTPLIB_CLIENT = supportScript('smtplib-client.py');

interface PythonReport {
  ok: boolean;
  code: number | null;
  tlsVersion: string | null;
  steps: { step: string; code: number; text: string }[];
  error: string | null;
}

/** Python's smtplib, as a scripted device: one TLS version exactly, one SASL mechanism forced. */
export async function pythonSmtplib(opts: ClientOptions): Promise<ClientResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const input = JSON.stringify({
    host: opts.host,
    port: opts.port,
    security: opts.security,
    tlsVersion: opts.tlsVersion ?? null,
    mechanism: opts.mechanism ?? null,
    ...(opts.mechanism ? credentials(opts) : {}),
    from: opts.from,
    to: opts.to,
    message: toBuffer(opts.message).toString('base64'),
    caFile: opts.caFile ?? null,
    sourceAddress: opts.sourceAddress ?? null,
    forceAuth: opts.forceAuth ?? false,
    // Socket timeout stays below the kill so python can still report what happened.
    timeout: Math.max(1, (timeoutMs - 1000) / 1000),
    ehloName: EHLO_NAME,
    legacyCiphers: LEGACY_CIPHERS,
  });
  const run = await runProcess('python3', [SMTPLIB_CLIENT], input, timeoutMs);
  let report: PythonReport | undefined;
  try {
    report = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as PythonReport;
  } catch {
    // No JSON line: the transcript below carries whatever python printed instead.
  }
  const transcript = [
    ...(report?.steps ?? []).flatMap((s) => replyLines(s.code, s.text).map((line) => `${s.step}: ${line}`)),
    report?.error ? `error: ${report.error}` : '',
    report ? '' : `stdout: ${run.stdout}`,
    run.stderr ? `stderr: ${run.stderr}` : '',
    run.spawnError ? `spawn: ${run.spawnError.message}` : '',
  ]
    .filter(Boolean)
    .join('\n');
  return {
    ok: report?.ok ?? false,
    code: verdict(report?.ok ?? false, report?.code ?? null),
    transcript,
    exitCode: run.exitCode,
    tlsVersion: report?.tlsVersion ?? null,
    timedOut: run.timedOut,
  };
}
