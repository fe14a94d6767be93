import type { TestBridge } from './bridge.js';
import { nodemailerClient, type NodemailerResult } from './nodemailer-client.js';

let counter = 0;

/** One small message from `from` through the bridge's no-TLS listener, with a Message-ID unique to this process. */
export function sendThrough(bridge: TestBridge, from: string, tag: string): Promise<NodemailerResult> {
  counter += 1;
  return nodemailerClient({
    host: '127.0.0.1',
    port: bridge.ports.none!,
    security: 'none',
    from,
    to: ['owner@example.com'],
    message: `Subject: ${tag} ${counter}\r\nMessage-ID: <${tag}-${process.pid}-${counter}@test>\r\n\r\nok\r\n`,
  });
}
