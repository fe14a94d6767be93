import { join } from 'node:path';
import { startTestBridge, type TestBridge } from './bridge.js';
import { assertNoTokens, writeTokenFile } from './oauth.js';
import type { Pki } from './pki.js';
import { oauthAuthYaml, providerYaml } from './provider-yaml.js';
import { startTokenEndpoint, type TokenEndpoint, type TokenEndpointOptions } from './token-endpoint.js';
import { startUpstream, type Upstream } from './upstream.js';

export const OAUTH_FROM = 'sensor@example.net';
export const OAUTH_USER = 'relay@example.net';

export interface OAuthSetup {
  endpoint: TokenEndpoint;
  upstream: Upstream;
  bridge: TestBridge;
  tokenFile: string;
  /** The refresh token the token file started with, if it was seeded. */
  refreshToken?: string;
  /** Command output the test collected: searched for tokens, with the log lines, at the end. */
  outputs: string[];
}

export interface OAuthBridgeOptions {
  pki: Pki;
  endpoint?: TokenEndpointOptions;
  /** The account the upstream accepts; default OAUTH_USER, the one the config logs in as. */
  upstreamUser?: string;
  /** How the XOAUTH2-only upstream refuses a dead token. */
  refusal?: '535' | '334';
  /** Which login endpoints the config names: `device` (Microsoft-like), `browser` (Google-like), or both. */
  login?: 'device' | 'browser' | 'both';
  /** Start logged in: a token file holding a fresh refresh token. Default true. */
  seed?: boolean;
  /** Further keys of the oauth block, e.g. ["idle_refresh: 700"]. */
  oauth?: string[];
  /** Further keys of the upstream, e.g. ["concurrency: 5"]. */
  extra?: string[];
  /** Top-level YAML added to the config, e.g. an alert block. */
  top?: string;
  delivery?: string;
}

/**
 * A bridge whose one device sends through an upstream that takes only
 * XOAUTH2 with a live token from a test token endpoint. After `body`, no
 * token the endpoint issued may appear in a log line or collected output.
 */
export async function withOAuthBridge(options: OAuthBridgeOptions, body: (setup: OAuthSetup) => Promise<void>): Promise<void> {
  const { pki, login = 'both' } = options;
  const endpoint = await startTokenEndpoint({ deviceInterval: 1, ...options.endpoint });
  const upstream = await startUpstream({
    pki,
    mode: 'implicit',
    xoauth2: { user: options.upstreamUser ?? OAUTH_USER, isLive: endpoint.isLive, refusal: options.refusal },
  });
  const endpoints = {
    tokenUrl: endpoint.tokenUrl,
    deviceUrl: login === 'browser' ? undefined : endpoint.deviceUrl,
    authorizeUrl: login === 'device' ? undefined : endpoint.authorizeUrl,
  };
  const refreshToken = options.seed === false ? undefined : endpoint.issueRefreshToken();
  let tokenFile = '';
  const outputs: string[] = [];
  try {
    const bridge = await startTestBridge({
      yaml: `delivery: { ${options.delivery ?? 'sync_wait: 5s, retry_initial: 200, retry_max: 1s, shutdown_wait: 2s'} }
${options.top ?? ''}
upstreams:
${providerYaml({ name: 'provider', port: upstream.port, caFile: pki.caFile, extra: options.extra, auth: oauthAuthYaml(endpoints, options.oauth) })}devices:
  sensor: { auth: none, networks: [127.0.0.1], senders: [${OAUTH_FROM}], upstream: provider }
`,
      prepare: async (bridgeDir) => {
        tokenFile = join(bridgeDir, 'tokens', 'provider.json');
        if (refreshToken) await writeTokenFile(tokenFile, refreshToken);
      },
    });
    try {
      await body({ endpoint, upstream, bridge, tokenFile, refreshToken, outputs });
      assertNoTokens([...outputs, ...bridge.logs.map((line) => JSON.stringify(line))], endpoint.issued);
    } finally {
      await bridge.stop();
    }
  } finally {
    await upstream.close();
    await endpoint.close();
  }
}
