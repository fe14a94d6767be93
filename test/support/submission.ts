import type { TestBridge } from './bridge.js';
import type { ClientOptions, ClientResult } from './client-options.js';
import { pythonSmtplib } from './python-client.js';

let counter = 0;

/**
 * One submission to `bridge` as `device`, the way the tests' devices are set
 * up: password `DEVICE-secret`, sender DEVICE@example.net, over STARTTLS with
 * TLS 1.2 and PLAIN unless `options` say otherwise.
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
