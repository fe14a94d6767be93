import type { AuthorizationServer, Client } from 'oauth4webapi';
import type { OAuthSettings } from '../../config/schema.js';

/** Everything the token machinery needs about one account, presets filled in. */
export interface OAuthAccountSettings {
  /** The upstream's name: how logs, alerts and `oauth status` refer to the account. */
  upstream: string;
  user: string;
  server: AuthorizationServer;
  client: Client;
  /** Absent for a public client, which must send no secret at all (Microsoft: AADSTS700025). */
  clientSecret?: string;
  grant: OAuthSettings['grant'];
  scope: string;
  tokenFile: string;
  idleRefresh: number;
  /** Parameters the authorization URL needs beyond the standard ones. */
  authorizeParameters: Record<string, string>;
}

const MICROSOFT_DELEGATED_SCOPE = 'https://outlook.office.com/SMTP.Send offline_access';
// App-only SMTP takes the resource's .default scope; SMTP.SendAsApp is granted on the app registration.
const MICROSOFT_APP_ONLY_SCOPE = 'https://outlook.office365.com/.default';
const GOOGLE_SCOPE = 'https://mail.google.com/';

function microsoft(tenant: string): AuthorizationServer {
  const base = `https://login.microsoftonline.com/${encodeURIComponent(tenant)}/oauth2/v2.0`;
  return {
    issuer: `https://login.microsoftonline.com/${tenant}/v2.0`,
    token_endpoint: `${base}/token`,
    device_authorization_endpoint: `${base}/devicecode`,
    authorization_endpoint: `${base}/authorize`,
  };
}

const GOOGLE: AuthorizationServer = {
  issuer: 'https://accounts.google.com',
  token_endpoint: 'https://oauth2.googleapis.com/token',
  authorization_endpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
};

/** The provider preset overlaid with whatever endpoints the config names itself. */
export function oauthAccountSettings(upstream: string, user: string, oauth: OAuthSettings): OAuthAccountSettings {
  const preset =
    oauth.provider === 'microsoft' ? microsoft(oauth.tenant ?? 'organizations') : oauth.provider === 'google' ? GOOGLE : undefined;
  const tokenUrl = oauth.token_url ?? preset!.token_endpoint!;
  const server: AuthorizationServer = {
    issuer: preset?.issuer ?? new URL(tokenUrl).origin,
    token_endpoint: tokenUrl,
    device_authorization_endpoint: oauth.device_url ?? preset?.device_authorization_endpoint,
    authorization_endpoint: oauth.authorize_url ?? preset?.authorization_endpoint,
  };
  const presetScope =
    oauth.provider === 'google'
      ? GOOGLE_SCOPE
      : oauth.provider === 'microsoft'
        ? oauth.grant === 'client_credentials'
          ? MICROSOFT_APP_ONLY_SCOPE
          : MICROSOFT_DELEGATED_SCOPE
        : '';
  return {
    upstream,
    user,
    server,
    client: { client_id: oauth.client_id },
    clientSecret: oauth.client_secret,
    grant: oauth.grant,
    scope: oauth.scope ?? presetScope,
    // The schema's transform fills in tokens/UPSTREAM.json when the config names no file.
    tokenFile: oauth.token_file!,
    idleRefresh: oauth.idle_refresh,
    // Google hands out a refresh token only for offline access, and only with a fresh consent.
    authorizeParameters: oauth.provider === 'google' ? { access_type: 'offline', prompt: 'consent' } : {},
  };
}
