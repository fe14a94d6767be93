import { spawn } from 'node:child_process';
import type { AlertSettings } from '../config/schema.js';
import type { Logger } from './logger.js';

/**
 * What an alert says; the command gets it as JSON on stdin, the webhook as a
 * JSON POST body, each with a `summary` for a phone notification. Incidents
 * come in pairs: the second of each pair says the first is over.
 */
export type AlertEvent =
  | { event: 'device-frozen'; device: string; reason: string; frozen_at: string; client_ip?: string; sasl_username?: string }
  | { event: 'message-failed'; queue_id: string; device: string; upstream: string; reason: 'bounced' | 'expired'; detail: string }
  | { event: 'messages-delivered-again'; upstream: string; failed: number; since: string }
  | { event: 'upstream-failing'; upstream: string; since: string; error: string; hint: string }
  | { event: 'upstream-recovered'; upstream: string; since: string }
  | { event: 'queue-stuck'; messages: number; oldest_received_at: string }
  | { event: 'queue-moving'; messages: number }
  | { event: 'certificate-expiring'; cert_file: string; expires_at: string }
  | { event: 'certificate-renewed'; cert_file: string; expires_at: string }
  /** The bridge cannot log in to a provider (a failed token refresh); once per incident. */
  | { event: 'upstream-auth-failed' | 'upstream-auth-recovered'; upstream: string; reason: string }
  | { event: 'test' };

/** What the alert is about, for its log line: a device, an upstream, or the bridge itself. */
function subjectOf(event: AlertEvent): { device: string } | { upstream: string } | Record<string, never> {
  if ('device' in event) return { device: event.device };
  if ('upstream' in event) return { upstream: event.upstream };
  return {};
}

/** One line a person understands without opening the JSON. */
export function summarize(event: AlertEvent, hostname: string): string {
  const on = `smtp-bridge ${hostname}`;
  switch (event.event) {
    case 'device-frozen':
      return `${on}: device ${event.device} frozen (${event.reason}); its mail is held until you run "smtp-bridge device unfreeze ${event.device}"`;
    case 'message-failed':
      return `${on}: a message from ${event.device} ${event.reason === 'expired' ? 'expired undelivered' : 'was refused'} via ${event.upstream}: ${event.detail}`;
    case 'messages-delivered-again':
      return `${on}: mail via ${event.upstream} is delivered again (${event.failed} message${event.failed === 1 ? '' : 's'} failed since ${event.since})`;
    case 'upstream-failing':
      return `${on}: upstream ${event.upstream} failing since ${event.since}: ${event.error}. Hint: ${event.hint}`;
    case 'upstream-recovered':
      return `${on}: upstream ${event.upstream} works again (it failed since ${event.since})`;
    case 'queue-stuck':
      return `${on}: mail is not leaving: ${event.messages} queued, the oldest since ${event.oldest_received_at}`;
    case 'queue-moving':
      return `${on}: the queue is moving again (${event.messages} queued)`;
    case 'certificate-expiring':
      return `${on}: the listener certificate ${event.cert_file} expires ${event.expires_at}; devices will refuse it after that`;
    case 'certificate-renewed':
      return `${on}: the listener certificate is valid until ${event.expires_at}`;
    case 'upstream-auth-failed':
      return `${on}: cannot log in to upstream ${event.upstream}: ${event.reason}`;
    case 'upstream-auth-recovered':
      return `${on}: logging in to upstream ${event.upstream} works again`;
    case 'test':
      return `${on}: test alert; if you read this, alerts reach you`;
  }
}

/**
 * Tells the operator at once when something needs a person (field note 2:
 * a leak ran for 1.5 hours until someone looked at a graph). Fire and forget:
 * an alert that fails is logged and never holds up the bridge.
 */
export class Alert {
  constructor(
    private readonly settings: AlertSettings | undefined,
    private readonly hostname: string,
    private readonly logger: Logger,
  ) {}

  send(event: AlertEvent): void {
    void this.deliver(event);
  }

  /** Sends through every configured way and resolves, never rejects, with each way's error (undefined: sent). */
  async deliver(event: AlertEvent): Promise<{ via: 'command' | 'webhook'; error?: string }[]> {
    if (!this.settings) return [];
    const summary = summarize(event, this.hostname);
    const body = JSON.stringify({ ...event, summary, hostname: this.hostname });
    const { command, webhook, timeout } = this.settings;
    const env = {
      SMTP_BRIDGE_EVENT: event.event,
      SMTP_BRIDGE_SUMMARY: summary,
      ...('device' in event ? { SMTP_BRIDGE_DEVICE: event.device } : {}),
      ...('reason' in event ? { SMTP_BRIDGE_REASON: event.reason } : {}),
      ...('upstream' in event ? { SMTP_BRIDGE_UPSTREAM: event.upstream } : {}),
    };
    const ways = [
      ...(command ? [{ via: 'command' as const, sent: runCommand(command, env, body, timeout) }] : []),
      ...(webhook ? [{ via: 'webhook' as const, sent: post(webhook, body, timeout) }] : []),
    ];
    return Promise.all(ways.map(({ via, sent }) => this.report(via, event, sent)));
  }

  private report(via: 'command' | 'webhook', event: AlertEvent, sent: Promise<void>) {
    const fields = { event: event.event, ...subjectOf(event), via };
    return sent.then(
      () => {
        this.logger.info(fields, 'alert sent');
        return { via };
      },
      (err: Error) => {
        this.logger.error({ ...fields, err: err.message }, 'alert failed');
        return { via, error: err.message };
      },
    );
  }
}

/**
 * Runs through /bin/sh like a cron line. The event travels in environment
 * variables and on stdin, never inside the command line, so a device name
 * cannot inject shell syntax.
 */
function runCommand(command: string, env: Record<string, string>, body: string, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['pipe', 'ignore', 'pipe'],
      timeout,
      env: { ...process.env, ...env },
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-500)));
    // A command that does not read its stdin closes it early; that is not a failure.
    child.stdin!.on('error', () => {});
    child.stdin!.end(body);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `command ${signal ? `killed by ${signal}` : `exited ${code}`}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`,
          ),
        );
    });
  });
}

async function post(url: string, body: string, timeout: number): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(timeout),
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`webhook answered ${response.status} ${response.statusText}`);
}
