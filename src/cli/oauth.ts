import type { TokenEndpointResponse } from 'oauth4webapi';
import { loadConfig } from '../config/load.js';
import type { Config, SmtpUpstream } from '../config/schema.js';
import { authorizationCodeLogin } from '../delivery/oauth/auth-code-pkce.js';
import { deviceCodeLogin } from '../delivery/oauth/device-code.js';
import { oauthAccountSettings, type OAuthAccountSettings } from '../delivery/oauth/providers.js';
import { expiresAt } from '../delivery/oauth/token-endpoint.js';
import { smtpReplyHint } from '../delivery/provider-hints.js';
import { SmtpTransport } from '../delivery/smtp-transport.js';
import { REFRESH_MARGIN_MS, TokenRefresher } from '../delivery/oauth/token-refresher.js';
import { TokenStore } from '../delivery/oauth/token-store.js';
import { createLogger } from '../observe/logger.js';
import { kickServer } from '../spool/signal.js';
import { SpoolStore } from '../spool/store.js';
import { CONFIG_OPTION, JSON_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand, stringOptions, UsageError } from './args.js';
import { printTable } from './table.js';

const HELP = `usage: smtp-bridge oauth login UPSTREAM [-c FILE] [--port N]
       smtp-bridge oauth status [UPSTREAM] [-c FILE] [--json]

Signs the bridge in to an XOAUTH2 upstream, and shows the state of its tokens
(never a token itself).

actions:
  login UPSTREAM    Microsoft (an upstream with a device endpoint): prints an
                    address and a code to enter there from any browser, and
                    waits. Google: prints an address to open in a browser; on
                    this machine the browser comes back to 127.0.0.1 by
                    itself, from another one paste the address it ended on.
                    Writes the token file, then logs in to the provider with
                    it (a wrong account or SMTP AUTH disabled shows now, exit
                    1); a running bridge picks the file up and sends what it
                    has queued. With grant client_credentials there is no
                    login: it only checks the provider accepts the app's token
  status [UPSTREAM] each XOAUTH2 upstream: logged in or not, access token
                    valid until, last refresh, last error

options:
  -c, --config FILE   config file (default ${DEFAULT_CONFIG})
      --port N        login: the loopback port for the browser's redirect
                      (default: any free port)
      --json          status: machine-readable output
  -h, --help          show this help`;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseCommandArgs(argv, { ...CONFIG_OPTION, ...JSON_OPTION, ...stringOptions('port') }, HELP, true);
    const [action, name, ...extra] = positionals;
    const port = values.port === undefined ? 0 : Number(values.port);
    const valid =
      extra.length === 0 &&
      ((action === 'login' && name && !values.json && Number.isInteger(port) && port >= 0 && port <= 65535) ||
        (action === 'status' && values.port === undefined));
    if (!valid) {
      const problem = action && action !== 'login' && action !== 'status' ? `unknown action "${action}"\n\n` : '';
      throw new UsageError(`${problem}${HELP}`);
    }
    // status reads token files only: it must work without the client secret at hand.
    const { config } = await loadConfig(values.config, { skipSecrets: action === 'status' });
    if (action === 'login') return login(config, name!, port);
    return status(config, name, values.json);
  });
}

function xoauth2Upstreams(config: Config, only?: string): [string, SmtpUpstream][] {
  const all = Object.entries(config.upstreams).filter(
    (entry): entry is [string, SmtpUpstream] => entry[1].type === 'smtp' && entry[1].auth.oauth !== undefined,
  );
  if (only === undefined) return all;
  const found = all.filter(([name]) => name === only);
  if (found.length === 0) {
    const names = all.map(([name]) => name).join(', ') || 'none';
    throw new Error(`no XOAUTH2 upstream named "${only}" (XOAUTH2 upstreams: ${names})`);
  }
  return found;
}

function accountOf(name: string, upstream: SmtpUpstream): OAuthAccountSettings {
  return oauthAccountSettings(name, upstream.auth.user, upstream.auth.oauth!);
}

async function login(config: Config, name: string, port: number): Promise<number> {
  const [[, upstream]] = xoauth2Upstreams(config, name);
  const account = accountOf(name, upstream);
  const say = (line: string) => console.log(line);
  if (account.grant === 'client_credentials') {
    await verifyAtProvider(config, name, upstream, account);
    say(`upstream ${name}: app-only access (client_credentials) needs no login; the provider accepted XOAUTH2 as ${account.user}`);
    return 0;
  }
  let response: TokenEndpointResponse;
  if (account.server.device_authorization_endpoint) response = await deviceCodeLogin(account, say);
  else if (account.server.authorization_endpoint) response = await authorizationCodeLogin(account, { say, input: process.stdin, port });
  else throw new Error(`upstream ${name} has neither device_url nor authorize_url: there is no way to log in`);
  if (!response.refresh_token) {
    throw new Error(
      'the provider gave no refresh token, so the login would not outlive the hour (Microsoft: the scope needs offline_access)',
    );
  }
  const store = new TokenStore(account.tokenFile);
  const now = new Date().toISOString();
  const validUntil = expiresAt(response);
  await store.write({
    refresh_token: response.refresh_token,
    access_token: response.access_token,
    expires_at: validUntil,
    scope: response.scope,
    logged_in_at: now,
    last_refresh: now,
  });
  await store.clearError();
  say(`logged in: upstream ${name}; refresh token saved in ${account.tokenFile}`);
  say(`access token valid until ${validUntil}; the bridge refreshes it by itself from now on`);
  await verifyAtProvider(config, name, upstream, account);
  say(`the provider accepted XOAUTH2 as ${account.user}`);
  const due = await retryQueuedFor(config, name);
  if (due > 0) say(`${due} queued message${due === 1 ? '' : 's'} for ${name} due now`);
  return 0;
}

/**
 * Logs in to the provider with the token, as the bridge will: a sign-in as the
 * wrong account, or a mailbox with SMTP AUTH disabled (535 5.7.139), shows
 * now rather than at the first message. The token file is kept either way.
 */
async function verifyAtProvider(config: Config, name: string, upstream: SmtpUpstream, account: OAuthAccountSettings): Promise<void> {
  // Log lines go to stderr: stdout is for the user; neither ever gets a token.
  const logger = createLogger('warn', { write: (line: string) => void process.stderr.write(line) });
  const transport = new SmtpTransport(name, upstream, config.hostname, new TokenRefresher(account, logger));
  try {
    await transport.verifyLogin();
  } catch (err) {
    const reply = (err as Error).message;
    const hint = smtpReplyHint(reply);
    throw new Error(`the provider did not accept XOAUTH2 as ${account.user}: ${reply}${hint ? ` (hint: ${hint})` : ''}`);
  } finally {
    await transport.close();
  }
}

/**
 * Mail queued while the login was broken goes out now rather than at its
 * next backoff step, as after `queue retry`; returns how many messages.
 */
async function retryQueuedFor(config: Config, name: string): Promise<number> {
  const spool = new SpoolStore(config.spool.dir);
  const uses = (upstream: string) => {
    const entry = config.upstreams[upstream];
    return upstream === name || (entry?.type === 'smtp' && (entry.fallback ?? []).includes(name));
  };
  let messages;
  try {
    messages = (await spool.list('queue')).filter((message) => uses(message.envelope.upstream));
  } catch (err) {
    // No spool yet: the bridge has never run, so nothing waits.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const now = new Date().toISOString();
  for (const message of messages) {
    // One being delivered right now settles its own state.
    if (spool.isLocked(message.id)) continue;
    message.state.nextAttemptAt = now;
    await spool.saveState(message);
  }
  await kickServer(config.spool.dir);
  return messages.length;
}

interface AccountStatus {
  upstream: string;
  user: string;
  grant: string;
  state: string;
  valid_until?: string;
  last_refresh?: string;
  last_error?: string;
  last_error_at?: string;
  token_file: string;
}

async function status(config: Config, only: string | undefined, json: boolean): Promise<number> {
  const rows: AccountStatus[] = [];
  for (const [name, upstream] of xoauth2Upstreams(config, only)) {
    const account = accountOf(name, upstream);
    const store = new TokenStore(account.tokenFile);
    const row: AccountStatus = { upstream: name, user: account.user, grant: account.grant, state: '', token_file: account.tokenFile };
    rows.push(row);
    if (account.grant === 'client_credentials') {
      row.state = 'app-only: no login needed';
      continue;
    }
    let tokens;
    try {
      tokens = await store.read();
    } catch (err) {
      row.state = (err as Error).message;
      continue;
    }
    const lastError = await store.lastError();
    row.valid_until = tokens?.expires_at;
    row.last_refresh = tokens?.last_refresh;
    // An error older than the last good refresh is history, not the state.
    const failing = lastError && (!tokens?.last_refresh || lastError.at > tokens.last_refresh);
    if (failing) {
      row.last_error = lastError.error;
      row.last_error_at = lastError.at;
    }
    row.state = !tokens?.refresh_token
      ? `not logged in: run smtp-bridge oauth login ${name}`
      : failing
        ? 'refresh failing'
        : Date.parse(tokens.expires_at ?? '') - REFRESH_MARGIN_MS > Date.now()
          ? 'logged in'
          : 'logged in (access token due for refresh)';
  }
  if (json) {
    console.log(JSON.stringify(rows, null, 2));
    return 0;
  }
  if (rows.length === 0) {
    console.log('no upstream uses XOAUTH2');
    return 0;
  }
  printTable(
    rows,
    (row) => [
      row.upstream,
      row.user,
      row.grant,
      row.valid_until ?? '-',
      row.last_refresh ?? '-',
      row.state,
      row.last_error ? `${row.last_error} (${row.last_error_at})` : '',
    ],
    ['UPSTREAM', 'ACCOUNT', 'GRANT', 'VALID UNTIL', 'LAST REFRESH', 'STATE', 'LAST ERROR'],
  );
  return 0;
}
