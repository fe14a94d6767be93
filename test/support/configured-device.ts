import type { TestBridge } from './bridge.js';
import type { ClientOptions, ClientResult } from './client-options.js';
import { pythonSmtplib } from './python-client.js';

/**
 * A device entry (under `devices:`) as the tests that play devices by name
 * write it: password `NAME-secret`, sender NAME@example.net; `extra` holds
 * further keys, one per line.
 */
export function deviceYaml(name: string, extra = '', upstream = 'capture'): string {
  return `  ${name}:
    password: ${name}-secret
    senders: ["${name}@example.net"]
    upstream: ${upstream}
${extra.replace(/^/gm, '    ')}
`;
}

let counter = 0;

/**
 * One submission to `bridge` as a device from deviceYaml(), over STARTTLS
 * with TLS 1.2 and PLAIN unless `options` say otherwise.
 */
export function submitAs(bridge: TestBridge, device: string, options: Partial<ClientOptions> = {}): Promise<ClientResult> {
  counter += 1;
  return pythonSmtplib({
    host: '127.0.0.1',
    port: bridge.ports.starttls!,
    security: 'starttls',
    tlsVersion: 'TLSv1.2',
    mechanism: 'PLAIN',
    username: device,
    password: `${device}-secret`,
    from: `${device}@example.net`,
    to: ['someone@example.com'],
    message: `Subject: ${device} ${counter}\r\nMessage-ID: <${device}-${process.pid}-${counter}@test>\r\n\r\nhello\r\n`,
    ...options,
  });
}
