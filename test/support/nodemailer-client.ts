import { readFile } from 'node:fs/promises';
import type tls from 'node:tls';
import { format } from 'node:util';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import {
  credentials,
  DEFAULT_TIMEOUT_MS,
  EHLO_NAME,
  LEGACY_CIPHERS,
  notAdvertised,
  OLD_TLS,
  toBuffer,
  verdict,
  type ClientOptions,
  type ClientResult,
} from './client-options.js';

export interface NodemailerResult extends ClientResult {
  response: string | null;
}

function nodemailerTls(opts: ClientOptions): tls.ConnectionOptions {
  const options: tls.ConnectionOptions = { rejectUnauthorized: Boolean(opts.caFile) };
  if (opts.tlsVersion) {
    options.minVersion = opts.tlsVersion;
    options.maxVersion = opts.tlsVersion;
    if (OLD_TLS.has(opts.tlsVersion)) options.ciphers = LEGACY_CIPHERS;
  }
  return options;
}

/** nodemailer's SMTPConnection as a modern client (TLS 1.3 unless pinned), in-process. */
export async function nodemailerClient(opts: ClientOptions): Promise<NodemailerResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const log: string[] = [];
  const record = (_data: unknown, message?: unknown, ...args: unknown[]): void => {
    log.push(format(message, ...args));
  };
  const tlsOptions = nodemailerTls(opts);
  if (opts.caFile) tlsOptions.ca = await readFile(opts.caFile, 'utf8');
  const connection = new SMTPConnection({
    host: opts.host,
    port: opts.port,
    secure: opts.security === 'implicit',
    requireTLS: opts.security === 'starttls',
    ignoreTLS: opts.security === 'none',
    name: EHLO_NAME,
    localAddress: opts.sourceAddress,
    tls: tlsOptions,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    socketCloseTimeout: 0,
    transactionLog: true,
    logger: { trace: record, debug: record, info: record, warn: record, error: record, fatal: record },
  });

  let tlsVersion: string | null = null;
  let timedOut = false;
  const ended = new Promise<void>((resolve) => connection.once('end', () => resolve()));
  const failed = new Promise<never>((_resolve, reject) => connection.once('error', reject));
  failed.catch(() => {});
  const timer = setTimeout(() => {
    timedOut = true;
    connection.close();
  }, timeoutMs);
  const step = <T>(fn: (cb: (err: Error | null, value?: T) => void) => void): Promise<T | undefined> =>
    Promise.race([failed, new Promise<T | undefined>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))))]);

  try {
    await step<void>((cb) => connection.connect((err) => cb(err ?? null)));
    const socket = connection._socket;
    if (socket && 'getProtocol' in socket) tlsVersion = (socket as tls.TLSSocket).getProtocol();
    // After connect() the last reply nodemailer read is the (post-STARTTLS) EHLO reply.
    if (notAdvertised(opts, connection.lastServerResponse || '')) {
      throw new Error(`AUTH ${opts.mechanism} is not advertised`);
    }
    if (opts.mechanism) {
      const { username, password } = credentials(opts);
      await step<boolean>((cb) => connection.login({ method: opts.mechanism!, user: username, pass: password }, cb));
    }
    const info = await step<SMTPConnection.SentMessageInfo>((cb) =>
      connection.send({ from: opts.from, to: opts.to }, toBuffer(opts.message), cb),
    );
    const response = info?.response ?? null;
    connection.quit();
    await Promise.race([ended, failed.catch(() => {})]);
    return {
      ok: true,
      code: response ? Number(response.slice(0, 3)) : null,
      response,
      transcript: log.join('\n'),
      exitCode: null,
      tlsVersion,
      timedOut,
    };
  } catch (err) {
    const e = err as Error & { responseCode?: number; response?: string };
    connection.close();
    return {
      ok: false,
      code: verdict(false, e.responseCode ?? null),
      response: e.response ?? null,
      transcript: [...log, `error: ${e.message}`].join('\n'),
      exitCode: null,
      tlsVersion,
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}
