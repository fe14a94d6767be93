import * as oauth from 'oauth4webapi';
import { oauthErrorHint } from '../provider-hints.js';
import type { OAuthAccountSettings } from './providers.js';

const REQUEST_TIMEOUT_MS = 30_000;

/** A public client sends no client_secret at all: Microsoft refuses even an empty one (AADSTS700025). */
export function clientAuthentication(account: OAuthAccountSettings): oauth.ClientAuth {
  return account.clientSecret === undefined ? oauth.None() : oauth.ClientSecretPost(account.clientSecret);
}

/**
 * Options for every request to the provider. The schema allows plain http only
 * to this host, so allowing it here opens nothing beyond a local endpoint.
 */
export function requestOptions(): { signal: AbortSignal; [oauth.allowInsecureRequests]: boolean } {
  return { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), [oauth.allowInsecureRequests]: true };
}

/** A token endpoint's refusal or an unreachable endpoint, in words for a log line; never a token. */
export class TokenEndpointError extends Error {
  constructor(
    message: string,
    /** The provider's `error` code, when it answered with one. */
    readonly error?: string,
    readonly description?: string,
    readonly hint?: string,
  ) {
    super(message);
  }

  /** The provider said no to the grant itself: asking again without a new login cannot help. */
  get needsLogin(): boolean {
    return ['invalid_grant', 'invalid_client', 'unauthorized_client', 'invalid_scope', 'unsupported_grant_type'].includes(this.error ?? '');
  }
}

export function toTokenEndpointError(err: unknown): TokenEndpointError {
  if (err instanceof TokenEndpointError) return err;
  if (err instanceof oauth.ResponseBodyError) {
    const description = err.error_description?.split(/\r?\n/)[0];
    const hint = oauthErrorHint(err.error, description);
    return new TokenEndpointError(
      `token endpoint refused: ${err.error}${description ? ` (${description})` : ''}`,
      err.error,
      description,
      hint,
    );
  }
  const error = err as Error & { cause?: Error };
  if (err instanceof oauth.OperationProcessingError)
    return new TokenEndpointError(`token endpoint answered unexpectedly: ${error.message}`);
  // fetch() fails with a TypeError whose cause is the socket's error; a timeout aborts it.
  if (error.name === 'TypeError' || error.name === 'TimeoutError' || error.name === 'AbortError')
    return new TokenEndpointError(`token endpoint unreachable: ${error.message}${error.cause ? ` (${error.cause.message})` : ''}`);
  return new TokenEndpointError(error.message);
}

/** The fields of a token response the bridge keeps: when the access token stops being valid, and any rotated refresh token. */
export function expiresAt(response: oauth.TokenEndpointResponse, now = Date.now()): string {
  // A provider that names no lifetime gets the shortest one in use (an hour), so the bridge refreshes early rather than late.
  return new Date(now + (response.expires_in ?? 3600) * 1000).toISOString();
}
