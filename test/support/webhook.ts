import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitUntil } from './wait.js';

export interface Webhook {
  url: string;
  /** Every JSON body POSTed so far, in order. */
  bodies: Record<string, unknown>[];
  /** Waits until `predicate` holds over the bodies, or fails after `timeoutMs`. */
  until(predicate: (bodies: Record<string, unknown>[]) => boolean, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** An alert receiver on 127.0.0.1 that answers 204 and keeps what it was sent. */
export async function startWebhook(): Promise<Webhook> {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      bodies.push(JSON.parse(text) as Record<string, unknown>);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/alert`,
    bodies,
    async until(predicate, timeoutMs) {
      await waitUntil(
        () => `the webhook condition; got ${JSON.stringify(bodies)}`,
        () => predicate(bodies),
        timeoutMs,
        50,
      );
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
