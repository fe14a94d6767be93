import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { secretsEqual } from '../auth/credentials.js';
import type { HttpSettings } from '../config/schema.js';
import type { Logger } from './logger.js';

/** What the endpoint serves: each route answers with a status, a content type and a body. */
export interface HttpRoutes {
  status(): Promise<string>;
  metrics(): Promise<{ contentType: string; body: string }>;
  live(): Promise<{ ok: boolean; problems: string[] }>;
  ready(): Promise<{ ok: boolean; problems: string[] }>;
}

export interface RunningHttp {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** How long a request may take to arrive in full; node checks every TIMEOUT_CHECK_MS. */
const REQUEST_TIMEOUT_MS = 10_000;
const TIMEOUT_CHECK_MS = 2_000;
/** A status page, a Prometheus and a health check need a handful; the rest is someone misbehaving. */
export const MAX_CONNECTIONS = 64;

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  'referrer-policy': 'no-referrer',
};

/**
 * The read-only HTTP endpoint: status page, metrics and health. A password,
 * when set, is asked for with HTTP basic auth on every route (any user name);
 * the schema insists on one for an address other machines can reach.
 */
export async function startHttpServer(settings: HttpSettings, routes: HttpRoutes, logger: Logger): Promise<RunningHttp> {
  const { host, port } = settings.listen;
  const password = settings.password;
  const server: Server = createServer({ connectionsCheckingInterval: TIMEOUT_CHECK_MS }, (request, response) => {
    handle(request, response).catch((err: Error) => {
      logger.error({ path: request.url, err: err.message }, 'http request failed');
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else response.destroy();
    });
  });
  // A peer that opens connections and goes silent must not hold sockets for long, nor
  // take file descriptors the SMTP listeners need: past MAX_CONNECTIONS new ones are refused.
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  // The two above only start with a request's first byte; this one also ends a peer that never sends any.
  server.timeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  server.maxConnections = MAX_CONNECTIONS;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (password !== undefined && !authorized(request.headers.authorization, password)) {
      response.setHeader('www-authenticate', 'Basic realm="smtp-bridge", charset="UTF-8"');
      return send(response, 401, 'text/plain; charset=utf-8', 'authentication required\n');
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      return send(response, 405, 'text/plain; charset=utf-8', 'read-only: GET or HEAD\n');
    }
    const path = new URL(request.url ?? '/', 'http://bridge').pathname;
    switch (path) {
      case '/':
        return send(response, 200, 'text/html; charset=utf-8', await routes.status());
      case '/metrics': {
        const { contentType, body } = await routes.metrics();
        return send(response, 200, contentType, body);
      }
      case '/healthz':
      case '/readyz': {
        const report = await (path === '/healthz' ? routes.live() : routes.ready());
        return send(response, report.ok ? 200 : 503, 'text/plain; charset=utf-8', report.ok ? 'ok\n' : `${report.problems.join('\n')}\n`);
      }
      default:
        return send(response, 404, 'text/plain; charset=utf-8', 'not found: try /, /metrics, /healthz or /readyz\n');
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on http ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)),
    );
    server.listen({ host, port }, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  logger.info({ address: host, port: bound, basic_auth: password !== undefined }, 'http status endpoint listening');
  return {
    host,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

/** HTTP basic auth (RFC 7617): any user name, the configured password, compared in constant time. */
function authorized(header: string | undefined, password: string): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return false;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && secretsEqual(decoded.slice(colon + 1), password);
}
