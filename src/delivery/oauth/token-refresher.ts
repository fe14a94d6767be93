import * as oauth from 'oauth4webapi';
import type { Alert } from '../../observe/alert.js';
import type { Logger } from '../../observe/logger.js';
import type { OAuthAccountSettings } from './providers.js';
import { clientAuthentication, expiresAt, requestOptions, TokenEndpointError, toTokenEndpointError } from './token-endpoint.js';
import { TokenStore, type StoredTokens } from './token-store.js';

/**
 * How long before its expiry an access token is replaced. Microsoft's
 * high-volume endpoint refuses a token about to expire (501 5.5.127), and a
 * delivery may take minutes after AUTH; ten minutes is comfortably more.
 */
export const REFRESH_MARGIN_MS = 10 * 60_000;

/** The longest wait before an idle refresh that failed is tried again. */
const IDLE_RETRY_MAX_MS = 3_600_000;

interface AccessToken {
  token: string;
  expiresAt: number;
}

/**
 * The bridge's side of one OAuth2 account: hands out a live access token,
 * refreshing it early, at most one refresh at a time however many deliveries
 * ask, and keeps the refresh token alive while the bridge is idle. A rotated
 * refresh token is on disk before the access token that came with it is used.
 */
export class TokenRefresher {
  private readonly store: TokenStore;
  private tokens?: StoredTokens;
  private current?: AccessToken;
  private refreshing?: Promise<AccessToken>;
  /** A refusal no retry can fix (invalid_grant): nothing is asked of the provider until the token file changes. */
  private refusal?: TokenEndpointError;
  /** Set when upstream-auth-failed has been sent, so an incident alerts once; cleared with upstream-auth-recovered. */
  private alerted = false;
  private idleTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    readonly settings: OAuthAccountSettings,
    private readonly logger: Logger,
    private readonly alert?: Alert,
  ) {
    this.store = new TokenStore(settings.tokenFile);
  }

  /** A token valid for at least REFRESH_MARGIN_MS more; refreshes first when needed. */
  async accessToken(): Promise<string> {
    await this.reloadIfReplaced();
    if (this.current && this.current.expiresAt - REFRESH_MARGIN_MS > Date.now()) {
      // After an incident, a token from a new login (not a refresh) is the recovery.
      this.recovered('new login');
      return this.current.token;
    }
    return (await this.refresh('expiring')).token;
  }

  /**
   * The provider refused `stale`: refresh once, unless another delivery has
   * already replaced it, in which case that newer token is the answer.
   */
  async replaceRefused(stale: string): Promise<string> {
    await this.reloadIfReplaced();
    if (this.current && this.current.token !== stale && this.current.expiresAt - REFRESH_MARGIN_MS > Date.now()) return this.current.token;
    return (await this.refresh('refused by provider')).token;
  }

  /** Keeps the refresh token alive while no mail flows: one refresh per idle_refresh at least. */
  startIdleRefresh(): void {
    if (this.settings.grant !== 'refresh_token') return;
    void this.scheduleIdleRefresh().then(() => {
      const { upstream, tokenFile } = this.settings;
      if (!this.tokens?.refresh_token)
        this.logger.warn({ upstream, token_file: tokenFile }, `not logged in yet: mail queues until smtp-bridge oauth login ${upstream}`);
    });
  }

  /** Ends idle refreshing and waits out a refresh in flight, whose new refresh token must reach the disk. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    await this.refreshing?.catch(() => {});
  }

  /**
   * Arms the next idle refresh: idle_refresh after the last one. After a
   * failure the last one stays old, so the next try waits a full interval
   * (at most an hour) instead of asking the provider again at once.
   */
  private async scheduleIdleRefresh(failed = false): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.idleTimer);
    try {
      await this.reloadIfReplaced();
    } catch (err) {
      this.logger.error({ upstream: this.settings.upstream, err: (err as Error).message }, 'oauth token file unreadable');
    }
    const last = Date.parse(this.tokens?.last_refresh ?? this.tokens?.logged_in_at ?? '') || 0;
    const due = Math.max(0, last + this.settings.idleRefresh - Date.now());
    // With nothing to refresh yet (no login), or after a failure, look again after an interval.
    const wait = this.tokens?.refresh_token && !failed ? due : Math.min(this.settings.idleRefresh, IDLE_RETRY_MAX_MS);
    this.idleTimer = setTimeout(
      () =>
        void this.refresh('idle').then(
          () => this.scheduleIdleRefresh(),
          () => this.scheduleIdleRefresh(true), // already logged and alerted by refresh()
        ),
      wait,
    );
    this.idleTimer.unref();
  }

  /** Picks up a token file `oauth login` wrote while the bridge was running: queued mail goes out without a restart. */
  private async reloadIfReplaced(): Promise<void> {
    if (this.settings.grant !== 'refresh_token') return;
    if (this.tokens !== undefined && !(await this.store.changed())) return;
    const tokens = await this.store.read();
    const replaced = this.tokens !== undefined;
    this.tokens = tokens;
    this.refusal = undefined;
    this.current =
      tokens?.access_token && tokens.expires_at ? { token: tokens.access_token, expiresAt: Date.parse(tokens.expires_at) } : undefined;
    if (replaced) this.logger.info({ upstream: this.settings.upstream }, 'oauth token file replaced, using the new login');
  }

  private refresh(reason: string): Promise<AccessToken> {
    this.refreshing ??= this.requestToken(reason).finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async requestToken(reason: string): Promise<AccessToken> {
    const { upstream } = this.settings;
    // Logged and alerted when it first happened; every delivery since would only repeat it.
    if (this.refusal) throw this.refusal;
    try {
      const fresh = this.settings.grant === 'client_credentials' ? await this.clientCredentials() : await this.refreshTokenGrant();
      this.current = fresh;
      this.logger.info({ upstream, reason, expires_at: new Date(fresh.expiresAt).toISOString() }, 'oauth token refreshed');
      this.recovered('token refreshed');
      await this.store.clearError().catch(() => {});
      return fresh;
    } catch (err) {
      const failure = toTokenEndpointError(err);
      if (failure.needsLogin) this.refusal = failure;
      this.logger.error(
        { upstream, reason, error: failure.error, error_description: failure.description, hint: failure.hint, err: failure.message },
        'oauth token refresh failed',
      );
      await this.store.recordError(failure.message).catch(() => {});
      if (!this.alerted) {
        this.alerted = true;
        this.alert?.send({
          event: 'upstream-auth-failed',
          upstream,
          reason: failure.hint ? `${failure.message}: ${failure.hint}` : failure.message,
        });
      }
      throw failure;
    }
  }

  private recovered(reason: string): void {
    if (!this.alerted) return;
    this.alerted = false;
    const { upstream } = this.settings;
    this.logger.info({ upstream, reason }, 'upstream authentication recovered');
    this.alert?.send({ event: 'upstream-auth-recovered', upstream, reason });
  }

  private async refreshTokenGrant(): Promise<AccessToken> {
    const { server, client, upstream } = this.settings;
    const refreshToken = this.tokens?.refresh_token;
    if (!refreshToken) {
      throw new TokenEndpointError(
        `no refresh token in ${this.store.file}: run smtp-bridge oauth login ${upstream}`,
        'invalid_grant',
        undefined,
        `run smtp-bridge oauth login ${upstream}`,
      );
    }
    const response = await oauth.refreshTokenGrantRequest(
      server,
      client,
      clientAuthentication(this.settings),
      refreshToken,
      requestOptions(),
    );
    const result = await oauth.processRefreshTokenResponse(server, client, response);
    const now = new Date().toISOString();
    const tokens: StoredTokens = {
      ...this.tokens,
      // A provider that rotates refresh tokens may already have invalidated the old one: it goes to disk before anything else happens.
      refresh_token: result.refresh_token ?? refreshToken,
      access_token: result.access_token,
      expires_at: expiresAt(result),
      scope: result.scope ?? this.tokens?.scope,
      last_refresh: now,
    };
    // Kept in memory even if the write fails (disk full): the old refresh token may be dead already, and
    // the next refresh, saved then, continues from this one. Its access token is not used unsaved.
    this.tokens = tokens;
    await this.store.write(tokens);
    return { token: result.access_token, expiresAt: Date.parse(tokens.expires_at!) };
  }

  /** App-only access: no refresh token and no login, a new token straight from the client's own secret. */
  private async clientCredentials(): Promise<AccessToken> {
    const { server, client, scope } = this.settings;
    const response = await oauth.clientCredentialsGrantRequest(
      server,
      client,
      clientAuthentication(this.settings),
      scope ? { scope } : {},
      requestOptions(),
    );
    const result = await oauth.processClientCredentialsResponse(server, client, response);
    return { token: result.access_token, expiresAt: Date.parse(expiresAt(result)) };
  }
}
