/**
 * What the stages tell whoever watches the bridge (the status page, metrics
 * and alerts in observe/): facts about sessions, messages and upstreams,
 * never a secret or a message body. Stages only call the sink; bridge.ts
 * decides who listens.
 */
export type BridgeEvent =
  | { type: 'tls-session'; version: string }
  | { type: 'authenticated'; device: string; clientIp: string; tls?: string; mechanism: string }
  | { type: 'auth-failed'; device?: string; reason: string }
  | { type: 'refused'; device: string; rule: string }
  | { type: 'accepted'; device: string; upstream: string; clientIp: string; tls?: string; mechanism?: string }
  | { type: 'delivered'; device: string; upstream: string; delayMs: number }
  | { type: 'deferred'; device: string; upstream: string; response: string }
  | { type: 'failed'; device: string; upstream: string; queueId: string; reason: 'bounced' | 'expired'; response: string }
  /** The upstream answered a delivery attempt (whatever it said about the recipients). */
  | { type: 'upstream-ok'; upstream: string }
  /** The attempt failed before any recipient was judged: connection, TLS, AUTH or a dropped session. */
  | { type: 'upstream-error'; upstream: string; response: string; backoffUntil?: number };

export type EventSink = (event: BridgeEvent) => void;

/** For stages built without an observer (tests, CLI tools). */
export const ignoreEvents: EventSink = () => {};
