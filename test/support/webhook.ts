import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

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
      const deadline = Date.now() + timeoutMs;
      while (!predicate(bodies)) {
        if (Date.now() > deadline) throw new Error(`webhook condition not met within ${timeoutMs} ms; got ${JSON.stringify(bodies)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
