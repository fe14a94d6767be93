import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import * as oauth from 'oauth4webapi';
import type { OAuthAccountSettings } from './providers.js';
import { clientAuthentication, requestOptions, toTokenEndpointError } from './token-endpoint.js';

/** How long a login may wait for the browser. */
const LOGIN_TIMEOUT_MS = 10 * 60_000;

export interface BrowserLoginOptions {
  say: (line: string) => void;
  /** Where the user may paste the address the browser ended on, when the browser runs on another machine. */
  input: Readable;
  /** The loopback port for the redirect; 0 lets the system pick one. */
  port: number;
}

/**
 * The authorization-code grant with PKCE (S256) and a loopback redirect
 * (RFC 8252), as Google requires for mail scopes: it has no device flow for
 * them. The browser may run anywhere: on this machine it lands on the
 * loopback listener; on another one its final page fails to load, and the
 * user pastes that page's address here.
 */
export async function authorizationCodeLogin(
  account: OAuthAccountSettings,
  { say, input, port }: BrowserLoginOptions,
): Promise<oauth.TokenEndpointResponse> {
  const { server: authServer, client } = account;
  if (!authServer.authorization_endpoint) throw new Error('no authorize_url for this upstream');
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const listener = await listen(port);
  const redirectUri = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/`;
  const lines = createInterface({ input, terminal: false });
  try {
    const url = new URL(authServer.authorization_endpoint);
    const parameters: Record<string, string> = {
      client_id: client.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...(account.scope ? { scope: account.scope } : {}),
      ...account.authorizeParameters,
    };
    for (const [key, value] of Object.entries(parameters)) url.searchParams.set(key, value);
    say(`Open this address in any browser and sign in:\n\n  ${url.href}\n`);
    say(
      `If the browser runs on another machine, it ends on a page at ${redirectUri} that fails to load: copy that page's address from the address bar and paste it here.`,
    );
    const returned = await waitForRedirect(listener, lines, state, say);
    let callback: URLSearchParams;
    try {
      callback = oauth.validateAuthResponse(authServer, client, returned, state);
    } catch (err) {
      if (err instanceof oauth.AuthorizationResponseError)
        throw new Error(`the provider refused the login: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`);
      throw err;
    }
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        authServer,
        client,
        clientAuthentication(account),
        callback,
        redirectUri,
        verifier,
        requestOptions(),
      );
      return await oauth.processAuthorizationCodeResponse(authServer, client, response);
    } catch (err) {
      throw toTokenEndpointError(err);
    }
  } finally {
    lines.close();
    listener.close();
    listener.closeAllConnections();
  }
}

function listen(port: number): Promise<Server> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // Loopback only: the code must never be reachable from the network (RFC 8252 §8.3).
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/**
 * The redirect's query, from whichever comes first: the browser at the
 * loopback listener, or a pasted address. Only an answer to this login (its
 * `state`) counts: anything else on the port, or pasted, is turned away and
 * the wait goes on, so a stray request cannot end or hijack the login.
 */
function waitForRedirect(listener: Server, lines: AsyncIterable<string>, state: string, say: (line: string) => void): Promise<URL> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no login within 10 minutes; run the command again')), LOGIN_TIMEOUT_MS);
    const done = (url: URL) => {
      clearTimeout(timer);
      resolve(url);
    };
    listener.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (!isAnswer(url, state)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('smtp-bridge: signed in. You can close this window.\n');
      done(url);
    });
    void (async () => {
      for await (const line of lines) {
        const pasted = parseUrl(line.trim());
        if (pasted && isAnswer(pasted, state)) return done(pasted);
        if (line.trim()) say('That is not the address the browser ended on for this login (it has code= and state= in it); try again.');
      }
    })();
  });
}

function isAnswer(url: URL, state: string): boolean {
  return url.searchParams.get('state') === state && (url.searchParams.has('code') || url.searchParams.has('error'));
}

function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
