import { spawn } from 'node:child_process';
import type { AlertSettings } from '../config/schema.js';
import type { Logger } from './logger.js';

/** What an alert says; the command gets it as JSON on stdin, the webhook as a JSON POST body. */
export type AlertEvent =
  | {
      event: 'device-frozen';
      device: string;
      reason: string;
      frozen_at: string;
      client_ip?: string;
      sasl_username?: string;
    }
  | {
      /** The bridge cannot log in to a provider (a failed token refresh); once per incident. */
      event: 'upstream-auth-failed' | 'upstream-auth-recovered';
      upstream: string;
      reason: string;
    };

/** What the alert is about: a device or an upstream. */
function subjectOf(event: AlertEvent): { device: string } | { upstream: string } {
  return 'device' in event ? { device: event.device } : { upstream: event.upstream };
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
    if (!this.settings) return;
    const body = JSON.stringify({ ...event, hostname: this.hostname });
    const { command, webhook, timeout } = this.settings;
    if (command) this.report('command', event, runCommand(command, event, body, timeout));
    if (webhook) this.report('webhook', event, post(webhook, body, timeout));
  }

  private report(via: 'command' | 'webhook', event: AlertEvent, sent: Promise<void>): void {
    sent.then(
      () => this.logger.info({ event: event.event, ...subjectOf(event), via }, 'alert sent'),
      (err: Error) => this.logger.error({ event: event.event, ...subjectOf(event), via, err: err.message }, 'alert failed'),
    );
  }
}

/**
 * Runs through /bin/sh like a cron line. The event travels in environment
 * variables and on stdin, never inside the command line, so a device name
 * cannot inject shell syntax.
 */
function runCommand(command: string, event: AlertEvent, body: string, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['pipe', 'ignore', 'pipe'],
      timeout,
      env: {
        ...process.env,
        SMTP_BRIDGE_EVENT: event.event,
        ...('device' in event ? { SMTP_BRIDGE_DEVICE: event.device } : { SMTP_BRIDGE_UPSTREAM: event.upstream }),
        SMTP_BRIDGE_REASON: event.reason,
      },
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
