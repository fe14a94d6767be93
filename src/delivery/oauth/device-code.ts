import * as oauth from 'oauth4webapi';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OAuthAccountSettings } from './providers.js';
import { clientAuthentication, requestOptions, toTokenEndpointError } from './token-endpoint.js';

/** RFC 8628 §3.5: without an interval from the provider, poll every 5 s; slow_down adds 5 s for good. */
const DEFAULT_INTERVAL_S = 5;
const SLOW_DOWN_S = 5;

/**
 * The device authorization grant (RFC 8628), for a box without a browser:
 * prints where to sign in and the code to type there, then polls the token
 * endpoint at the interval the provider asks for until the user is done.
 */
export async function deviceCodeLogin(account: OAuthAccountSettings, say: (line: string) => void): Promise<oauth.TokenEndpointResponse> {
  const { server, client, scope } = account;
  const auth = clientAuthentication(account);
  let authorization: oauth.DeviceAuthorizationResponse;
  try {
    const response = await oauth.deviceAuthorizationRequest(server, client, auth, scope ? { scope } : {}, requestOptions());
    authorization = await oauth.processDeviceAuthorizationResponse(server, client, response);
  } catch (err) {
    throw toTokenEndpointError(err);
  }
  say(`To sign in, open ${authorization.verification_uri} in any browser and enter the code ${authorization.user_code}`);
  const deadline = Date.now() + authorization.expires_in * 1000;
  let interval = authorization.interval ?? DEFAULT_INTERVAL_S;
  while (Date.now() < deadline) {
    await sleep(interval * 1000);
    try {
      const response = await oauth.deviceCodeGrantRequest(server, client, auth, authorization.device_code, requestOptions());
      return await oauth.processDeviceCodeResponse(server, client, response);
    } catch (err) {
      if (err instanceof oauth.ResponseBodyError && err.error === 'authorization_pending') continue;
      if (err instanceof oauth.ResponseBodyError && err.error === 'slow_down') {
        interval += SLOW_DOWN_S;
        continue;
      }
      throw toTokenEndpointError(err);
    }
  }
  throw new Error(`nobody signed in within ${Math.round(authorization.expires_in / 60)} minutes; run the command again`);
}
