import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';

/**
 * A real OAuth2 authorization server on 127.0.0.1, small enough to reason
 * about: short-lived access tokens, refresh tokens that rotate (the old one
 * dies on use, as Microsoft and Google may do), revocation, the device-code
 * grant, the authorization-code grant with PKCE S256, client credentials.
 * It records every token request, including whether a client_secret came
 * with it.
 */

export interface TokenRequest {
  grant_type: string;
  client_id?: string;
  /** True when the request carried a client_secret parameter (even an empty one) or an Authorization header. */
  secretSent: boolean;
  /** The answer: "ok", or the OAuth error code. */
  outcome: string;
}

export interface TokenEndpointOptions {
  clientId?: string;
  /** A confidential client's secret; without it the client is public and a request carrying any secret is refused. */
  clientSecret?: string;
  /** How long an access token really works. */
  accessLifetimeMs?: number;
  /**
   * Added to the advertised expires_in: by default 600 s, so a bridge that
   * refreshes 10 minutes early replaces a token exactly when it dies.
   */
  advertisedSlackSeconds?: number;
  /** Old refresh token dies when used (default true). */
  rotate?: boolean;
  /** Device flow: the first poll after approval is answered slow_down. */
  slowDownOnce?: boolean;
  /** Device flow: the interval the server asks for, in seconds. */
  deviceInterval?: number;
}

export interface TokenEndpoint {
  url: string;
  tokenUrl: string;
  deviceUrl: string;
  authorizeUrl: string;
  requests: TokenRequest[];
  /** Every access and refresh token handed out so far: a test greps output for these. */
  issued: string[];
  /** How many refresh_token grants succeeded. */
  refreshes(): number;
  /** Access tokens issued from now on work this long. */
  setAccessLifetime(ms: number): void;
  /** A refresh token as `oauth login` would have left it, for tests that start logged in. */
  issueRefreshToken(): string;
  isLive(accessToken: string): boolean;
  revokeRefreshTokens(): void;
  revokeAccessTokens(): void;
  /** The user typed this code at the verification URL and consented. */
  approveDevice(userCode: string): void;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

export async function startTokenEndpoint(options: TokenEndpointOptions = {}): Promise<TokenEndpoint> {
  const clientId = options.clientId ?? 'test-client';
  let lifetime = options.accessLifetimeMs ?? 60_000;
  const slack = options.advertisedSlackSeconds ?? 600;
  const rotate = options.rotate ?? true;
  const requests: TokenRequest[] = [];
  const issued: string[] = [];
  const refreshTokens = new Set<string>();
  const accessTokens = new Map<string, number>();
  const devices = new Map<string, { userCode: string; approved: boolean; slowedDown: boolean }>();
  const codes = new Map<string, { challenge: string; redirectUri: string }>();

  const token = (prefix: string) => {
    const value = `${prefix}${randomBytes(18).toString('base64url')}`;
    issued.push(value);
    return value;
  };
  const grantTokens = (withRefresh: boolean) => {
    const access = token('at-');
    accessTokens.set(access, Date.now() + lifetime);
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      access_token: access,
      expires_in: Math.round(lifetime / 1000) + slack,
      scope: 'test.send',
    };
    if (withRefresh) {
      const refresh = token('rt-');
      refreshTokens.add(refresh);
      body.refresh_token = refresh;
    }
    return body;
  };

  const handleToken = (form: URLSearchParams, authorization: string | undefined): [number, Record<string, unknown>] => {
    const grant = form.get('grant_type') ?? '';
    const secretSent = form.has('client_secret') || authorization !== undefined;
    const record: TokenRequest = { grant_type: grant, client_id: form.get('client_id') ?? undefined, secretSent, outcome: 'ok' };
    requests.push(record);
    const fail = (error: string, description: string, status = 400): [number, Record<string, unknown>] => {
      record.outcome = error;
      return [status, { error, error_description: description }];
    };
    if (form.get('client_id') !== clientId) return fail('invalid_client', 'unknown client_id', 401);
    if (options.clientSecret === undefined && secretSent)
      return fail(
        'invalid_client',
        'AADSTS700025: Client is public so neither client_assertion nor client_secret should be presented.',
        401,
      );
    if (options.clientSecret !== undefined && form.get('client_secret') !== options.clientSecret)
      return fail('invalid_client', 'AADSTS7000215: Invalid client secret provided.', 401);

    switch (grant) {
      case 'refresh_token': {
        const presented = form.get('refresh_token') ?? '';
        if (!refreshTokens.has(presented)) return fail('invalid_grant', 'AADSTS70000: The provided grant has expired or been revoked.');
        if (rotate) refreshTokens.delete(presented);
        const body = grantTokens(rotate);
        return [200, body];
      }
      case 'urn:ietf:params:oauth:grant-type:device_code': {
        const device = devices.get(form.get('device_code') ?? '');
        if (!device) return fail('expired_token', 'unknown device_code');
        if (!device.approved) return fail('authorization_pending', 'the user has not finished yet');
        if (options.slowDownOnce && !device.slowedDown) {
          device.slowedDown = true;
          return fail('slow_down', 'polling too fast');
        }
        devices.delete(form.get('device_code')!);
        return [200, grantTokens(true)];
      }
      case 'authorization_code': {
        const code = codes.get(form.get('code') ?? '');
        if (!code) return fail('invalid_grant', 'unknown or used code');
        codes.delete(form.get('code')!);
        if (form.get('redirect_uri') !== code.redirectUri) return fail('invalid_grant', 'redirect_uri does not match');
        const verifier = form.get('code_verifier') ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge)
          return fail('invalid_grant', 'PKCE verification failed');
        return [200, grantTokens(true)];
      }
      case 'client_credentials':
        if (options.clientSecret === undefined) return fail('unauthorized_client', 'a public client has no client_credentials grant');
        return [200, grantTokens(false)];
      default:
        return fail('unsupported_grant_type', grant);
    }
  };

  const handleDevice = (form: URLSearchParams): [number, Record<string, unknown>] => {
    if (form.get('client_id') !== clientId) return [401, { error: 'invalid_client' }];
    const deviceCode = randomBytes(12).toString('hex');
    const userCode = randomBytes(4).toString('hex').toUpperCase();
    devices.set(deviceCode, { userCode, approved: false, slowedDown: false });
    return [
      200,
      {
        device_code: deviceCode,
        user_code: userCode,
        verification_uri: `http://${HOST}:${port}/device-login`,
        expires_in: 300,
        interval: options.deviceInterval ?? 1,
      },
    ];
  };

  /** What a browser does at the authorization URL: the user consents at once and is sent to the redirect URI. */
  const handleAuthorize = (url: URL, res: ServerResponse) => {
    const q = url.searchParams;
    const redirect = q.get('redirect_uri') ?? '';
    if (q.get('client_id') !== clientId || q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !redirect) {
      res.writeHead(400).end('bad authorization request');
      return;
    }
    const code = randomBytes(12).toString('hex');
    codes.set(code, { challenge: q.get('code_challenge') ?? '', redirectUri: redirect });
    const target = new URL(redirect);
    target.searchParams.set('code', code);
    if (q.has('state')) target.searchParams.set('state', q.get('state')!);
    res.writeHead(302, { location: target.href }).end();
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${HOST}`);
    if (req.method === 'GET' && url.pathname === '/authorize') {
      handleAuthorize(url, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      const [status, body] =
        req.method === 'POST' && url.pathname === '/token'
          ? handleToken(form, req.headers.authorization)
          : req.method === 'POST' && url.pathname === '/device'
            ? handleDevice(form)
            : [404, { error: 'not_found' }];
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    });
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const url = `http://${HOST}:${port}`;

  return {
    url,
    tokenUrl: `${url}/token`,
    deviceUrl: `${url}/device`,
    authorizeUrl: `${url}/authorize`,
    requests,
    issued,
    refreshes: () => requests.filter((r) => r.grant_type === 'refresh_token' && r.outcome === 'ok').length,
    setAccessLifetime(ms) {
      lifetime = ms;
    },
    issueRefreshToken() {
      const refresh = token('rt-');
      refreshTokens.add(refresh);
      return refresh;
    },
    isLive: (accessToken) => (accessTokens.get(accessToken) ?? 0) > Date.now(),
    revokeRefreshTokens: () => refreshTokens.clear(),
    revokeAccessTokens: () => accessTokens.clear(),
    approveDevice(userCode) {
      for (const device of devices.values()) if (device.userCode === userCode) device.approved = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
