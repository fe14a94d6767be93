import type { SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerSession } from 'smtp-server';
import type { DigestMd5Response } from '../../auth/digest-md5-math.js';

/** A DIGEST-MD5 exchange that reached its response step with a nonce this connection issued. */
export interface DigestMd5Authentication {
  method: 'DIGEST-MD5';
  username: string;
  digest: DigestMd5Response;
}

/** What the session's onAuth hook receives: smtp-server's own mechanisms and the ones the bridge adds. */
export type BridgeAuthentication = SMTPServerAuthentication | DigestMd5Authentication;

export interface BridgeAuthResponse extends SMTPServerAuthenticationResponse {
  /** What the server proves back once the client is verified (DIGEST-MD5's rspauth). */
  serverProof?: string;
}

/** smtp-server's onAuth signature, widened to the bridge's own mechanisms; the session handlers implement it. */
export type BridgeAuthHandler = (
  auth: BridgeAuthentication,
  session: SMTPServerSession,
  callback: (err: Error | null | undefined, response?: BridgeAuthResponse) => void,
) => void;
