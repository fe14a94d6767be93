import { isIP } from 'node:net';
import bytes from 'bytes';
import ms from 'ms';
import { z } from 'zod';
import { isLanSized, parseNetwork } from './network.js';
import { parseStoredSecret, SCHEME_MECHANISMS, type StoredSecret } from '../auth/stored-secret.js';

/** SASL mechanisms a device may be allowed to use towards the bridge. */
export const DEVICE_MECHANISMS = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'DIGEST-MD5'] as const;
export type DeviceMechanism = (typeof DEVICE_MECHANISMS)[number];

export const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

const quoted = (value: unknown): string => JSON.stringify(value);

const port = z
  .number({ error: (iss) => `must be a port number, got ${quoted(iss.input)}` })
  .int({ error: 'must be a whole number' })
  .min(1, { error: 'must be between 1 and 65535' })
  .max(65535, { error: 'must be between 1 and 65535' });

const nonEmpty = z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' });

const ipAddress = z.string({ error: 'must be an IP address' }).refine((value) => isIP(value) !== 0, {
  error: (iss) => `not an IP address: ${quoted(iss.input)}`,
});

const cidr = z.string({ error: 'must be a network like 192.168.1.0/24' }).refine(
  (value) => {
    try {
      parseNetwork(value);
      return true;
    } catch {
      return false;
    }
  },
  { error: (iss) => `not a network or address: ${quoted(iss.input)}` },
);

/** An address rule: a full address, or "@domain" for every address of that domain. */
const addressRule = z
  .string({ error: 'must be an address or @domain' })
  .regex(/^([^@\s]+@[^@\s]+|@[^@\s]+)$/, { error: (iss) => `not an address or @domain: ${quoted(iss.input)}` });

/** A size in bytes, written as a number or with a unit ("25MB"), at most `max` (written the same way). */
function size(max: string) {
  const limit = bytes.parse(max)!;
  return z.union([z.number().int().positive(), z.string()], { error: 'must be a size like 25MB' }).transform((value, ctx) => {
    const parsed = typeof value === 'number' ? value : bytes.parse(value);
    if (parsed === null || !Number.isFinite(parsed) || parsed <= 0) {
      ctx.addIssue({ code: 'custom', message: `not a size: ${quoted(value)} (use e.g. 25MB)` });
      return z.NEVER;
    }
    if (parsed > limit) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${max}, got ${quoted(value)}` });
      return z.NEVER;
    }
    return Math.floor(parsed);
  });
}

/**
 * A duration in milliseconds, written as a number of ms or with a unit ("10s",
 * "1m", "5d"), at most `max`. Every duration has a ceiling: a timer past
 * 2^31 ms fires at once, and a typo of extra digits should be an error, not
 * a setting.
 */
function duration(max: ms.StringValue) {
  const limit = ms(max);
  return z
    .union([z.number().int().nonnegative(), z.string()], { error: 'must be a duration like 10s, 1m or 5d' })
    .transform((value, ctx) => {
      const parsed = typeof value === 'number' ? value : ms(value as ms.StringValue);
      if (parsed === undefined || !Number.isFinite(parsed) || parsed < 0) {
        ctx.addIssue({ code: 'custom', message: `not a duration: ${quoted(value)} (use e.g. 10s, 1m, 5d)` });
        return z.NEVER;
      }
      if (parsed > limit) {
        ctx.addIssue({ code: 'custom', message: `must be at most ${max}, got ${quoted(value)}` });
        return z.NEVER;
      }
      return Math.round(parsed);
    });
}

/** A whole number from `min` to `max`; the range is checked first, so 1e300 hears the range rather than zod's safe-integer limit. */
const count = (min: number, max: number) => z.number().min(min).max(max).refine(Number.isInteger, { error: 'must be a whole number' });

/** Rates count one timestamp per event up to COUNT (see SlidingWindow), so COUNT bounds memory per device. */
const MAX_RATE_COUNT = 100_000;
const MAX_RATE_WINDOW: ms.StringValue = '31d';

/** "COUNT/DURATION" ("20/1h", "100/1d", "3/10s"): at most COUNT within any window of DURATION. */
function toRate(value: string, ctx: z.core.$RefinementCtx): { count: number; per: string; window: number } {
  const match = /^(\d+)\s*\/\s*(\S+)$/.exec(value.trim());
  const events = Number(match?.[1]);
  const window = match ? ms(match[2] as ms.StringValue) : undefined;
  if (!match || events < 1 || window === undefined || !Number.isFinite(window) || window <= 0) {
    ctx.addIssue({ code: 'custom', message: `not a rate: ${quoted(value)} (use COUNT/DURATION, e.g. 20/1h or 100/1d)` });
    return z.NEVER;
  }
  if (events > MAX_RATE_COUNT || window > ms(MAX_RATE_WINDOW)) {
    ctx.addIssue({ code: 'custom', message: `${quoted(value)} is too large: at most ${MAX_RATE_COUNT} per at most ${MAX_RATE_WINDOW}` });
    return z.NEVER;
  }
  return { count: events, per: match[2], window: Math.round(window) };
}

/** A rate as the config writes it: "20/1h". */
export function formatRate(rate: { count: number; per: string }): string {
  return `${rate.count}/${rate.per}`;
}

const rate = z.string({ error: 'must be a rate like 20/1h' }).transform(toRate);

/** One rate or a list of them; every one must hold. */
const rates = z.preprocess(
  (value) => (typeof value === 'string' ? [value] : value),
  z.array(rate, { error: 'must be a rate like 20/1h, or a list of rates' }).min(1, { error: 'must name at least one rate' }),
);

/** A stored secret from `smtp-bridge hash-secret`: one form, or a list of forms serving different mechanisms. */
const storedSecrets = z
  .preprocess(
    (value) => (typeof value === 'string' ? [value] : value),
    z
      .array(z.string({ error: 'must be a stored secret' }), { error: 'must be a stored secret or a list of them' })
      .min(1, { error: 'must name at least one form' }),
  )
  .transform((texts, ctx) => {
    const forms: StoredSecret[] = [];
    let wrong = false;
    texts.forEach((text, index) => {
      const form = parseStoredSecret(text);
      const problem =
        typeof form === 'string' ? form : forms.some((other) => other.scheme === form.scheme) && `a second {${form.scheme}} form`;
      if (problem) {
        wrong = true;
        ctx.addIssue({ code: 'custom', path: [index], message: problem });
      } else forms.push(form as StoredSecret);
    });
    // No half list: the cross-field checks would blame the forms left out for mechanisms they no longer serve.
    return wrong ? z.NEVER : forms;
  });

const tlsVersion = z.enum(TLS_VERSIONS, {
  error: (iss) => `unknown TLS version ${quoted(iss.input)} (use one of ${TLS_VERSIONS.join(', ')})`,
});

/**
 * Where a secret comes from. Exactly one source is allowed; the loader reads
 * env and file sources into `password` so later stages see one field.
 */
const secretSources = {
  password: nonEmpty.optional(),
  password_env: nonEmpty.optional(),
  password_file: nonEmpty.optional(),
};

const listenerSchema = z.strictObject({
  port,
  tls: z.enum(['none', 'starttls', 'implicit'], {
    error: (iss) => `unknown listener tls mode ${quoted(iss.input)} (use none, starttls or implicit)`,
  }),
  address: ipAddress.default('0.0.0.0'),
  allow_cleartext_auth: z.boolean({ error: 'must be true or false' }).default(false),
  // Postfix's broken_sasl_auth_clients: firmware written against pre-RFC 2554 servers looks only for "AUTH=".
  auth_equals: z.boolean({ error: 'must be true or false' }).default(true),
});

const inboundTlsSchema = z.strictObject({
  cert_file: nonEmpty.default('certs/bridge.crt'),
  key_file: nonEmpty.default('certs/bridge.key'),
  min_version: tlsVersion.default('TLSv1.2'),
});

/**
 * An OAuth2 endpoint. Tokens and codes travel to it, so it must be https; plain
 * http is allowed only to this host itself (a local token proxy, a test server).
 */
const endpointUrl = z.url({ protocol: /^https?$/, error: (iss) => `not an http(s) URL: ${quoted(iss.input)}` }).refine(
  (value) => {
    const url = new URL(value);
    return url.protocol === 'https:' || ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  },
  { error: (iss) => `must be https (plain http only to 127.0.0.1, ::1 or localhost), got ${quoted(iss.input)}` },
);

export const OAUTH_PROVIDERS = ['microsoft', 'google'] as const;

/** How the bridge gets access tokens for XOAUTH2; the preset endpoints and scopes are in delivery/oauth/providers.ts. */
const oauthSchema = z.strictObject({
  provider: z
    .enum(OAUTH_PROVIDERS, { error: (iss) => `unknown provider ${quoted(iss.input)} (use microsoft or google, or give token_url)` })
    .optional(),
  tenant: nonEmpty.optional(),
  token_url: endpointUrl.optional(),
  device_url: endpointUrl.optional(),
  authorize_url: endpointUrl.optional(),
  scope: nonEmpty.optional(),
  client_id: nonEmpty,
  client_secret: nonEmpty.optional(),
  client_secret_env: nonEmpty.optional(),
  client_secret_file: nonEmpty.optional(),
  grant: z
    .enum(['refresh_token', 'client_credentials'], {
      error: (iss) => `unknown grant ${quoted(iss.input)} (use refresh_token or client_credentials)`,
    })
    .default('refresh_token'),
  /** Where the refresh token lives; tokens/UPSTREAM.json next to the config file when absent (filled in below). */
  token_file: nonEmpty.optional(),
  /** A refresh token unused for long dies (Microsoft: after 90 days); one refresh per interval keeps it alive. */
  idle_refresh: duration('20d').default(86_400_000),
});

const smtpUpstreamSchema = z.strictObject({
  type: z.literal('smtp'),
  host: nonEmpty,
  port: port.optional(),
  tls: z.enum(['implicit', 'starttls'], {
    error: (iss) => `unknown upstream tls mode ${quoted(iss.input)} (use implicit or starttls; there is no plaintext upstream)`,
  }),
  min_version: z
    .enum(['TLSv1.2', 'TLSv1.3'], {
      error: (iss) => `upstream TLS below TLSv1.2 is refused, got ${quoted(iss.input)}`,
    })
    .default('TLSv1.2'),
  ca_file: nonEmpty.optional(),
  connect_timeout: duration('5m').default(15000),
  concurrency: z.number().int().min(1, { error: 'must be at least 1' }).max(100, { error: 'must be at most 100' }).default(20),
  rate: rates.optional(),
  idle_timeout: duration('1h').default(30000),
  auth: z.strictObject({
    user: nonEmpty,
    ...secretSources,
    mechanism: z
      .enum(['PLAIN', 'LOGIN', 'XOAUTH2'], {
        error: (iss) => `unknown upstream mechanism ${quoted(iss.input)} (use PLAIN, LOGIN or XOAUTH2)`,
      })
      .default('PLAIN'),
    oauth: oauthSchema.optional(),
  }),
  /** Upstreams tried in turn when this one cannot be reached, fails TLS or AUTH, or answers 4xx. */
  fallback: z.array(nonEmpty, { error: 'must be a list of upstream names' }).optional(),
});

const directoryUpstreamSchema = z.strictObject({
  type: z.literal('directory'),
  path: nonEmpty,
});

const upstreamSchema = z.preprocess(
  // An upstream without `type` is an SMTP provider, the common case.
  (value) => (value && typeof value === 'object' && !('type' in value) ? { type: 'smtp', ...value } : value),
  z.discriminatedUnion('type', [smtpUpstreamSchema, directoryUpstreamSchema], {
    error: (iss) => `unknown upstream type ${quoted((iss.input as { type?: unknown })?.type)} (use smtp or directory)`,
  }),
);

/** Private and link-local ranges: the default for where an authenticating device may connect from. */
export const LAN_NETWORKS = ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', 'fe80::/10'];

/**
 * A replacement address: true means the device's upstream account (its
 * auth.user), which is what providers insist the sender be.
 */
const addressOrAccount = z.union([z.boolean(), z.string().regex(/^[^@\s<>]+@[^@\s<>]+$/)], {
  error: (iss) => `must be true, false or an address, got ${quoted(iss.input)}`,
});

const deviceSchema = z.strictObject({
  username: nonEmpty.optional(),
  auth: z
    .enum(['required', 'none'], { error: (iss) => `unknown auth mode ${quoted(iss.input)} (use required or none)` })
    .default('required'),
  ...secretSources,
  secret: storedSecrets.optional(),
  generate_password: z.boolean({ error: 'must be true or false' }).default(false),
  mechanisms: z
    .array(z.enum(DEVICE_MECHANISMS, { error: (iss) => `unknown mechanism ${quoted(iss.input)}` }), {
      error: 'must be a list of mechanisms',
    })
    .min(1, { error: 'must name at least one mechanism' })
    .default(['PLAIN', 'LOGIN', 'CRAM-MD5']),
  networks: z.array(cidr, { error: 'must be a list of networks' }).min(1, { error: 'must name at least one network' }).optional(),
  senders: z.array(addressRule, { error: 'must be a list of addresses' }).min(1, { error: 'must name at least one sender' }),
  recipients: z
    .array(addressRule, { error: 'must be a list of addresses' })
    .min(1, { error: 'must name at least one recipient' })
    .optional(),
  upstream: nonEmpty,
  rewrite_sender: addressOrAccount.default(false),
  rewrite_from: addressOrAccount.default(false),
  allow_cleartext_auth: z.boolean({ error: 'must be true or false' }).default(false),
  // Postfix's smtpd_forbid_bare_newline_exclusions: firmware that ends DATA with <LF>.<LF>, opted in by name.
  allow_bare_lf_dot: z.boolean({ error: 'must be true or false' }).default(false),
  min_tls: tlsVersion.optional(),
  allow_wide_networks: z.boolean({ error: 'must be true or false' }).default(false),
  max_recipients: count(1, 10_000).optional(),
  max_size: size('1GB').optional(),
  limits: z.strictObject({ messages: rates.optional(), recipients: rates.optional() }).optional(),
  freeze_after: z
    .union([z.literal(false), z.string()], { error: 'must be a rate like 60/1h, or false' })
    .transform((value, ctx) => (value === false ? false : toRate(value, ctx)))
    .optional(),
});

const LOCKOUT_DEFAULTS = {
  ip_failures: 5,
  username_failures: 10,
  window: 15 * 60_000,
  duration: 60_000,
  max_duration: 3_600_000,
  ipv6_prefix: 64,
};

const lockoutSchema = z.strictObject({
  ip_failures: count(0, 100).default(LOCKOUT_DEFAULTS.ip_failures),
  username_failures: count(0, 100).default(LOCKOUT_DEFAULTS.username_failures),
  window: duration('1d').default(LOCKOUT_DEFAULTS.window),
  duration: duration('7d').default(LOCKOUT_DEFAULTS.duration),
  max_duration: duration('7d').default(LOCKOUT_DEFAULTS.max_duration),
  // One IPv6 host gets a whole /64 (RFC 6177), and picks any address in it.
  ipv6_prefix: count(32, 128).default(LOCKOUT_DEFAULTS.ipv6_prefix),
});

/** A time limit a timer enforces: above zero, and within a day (setTimeout would fire at once beyond 2^31-1 ms). */
const timeLimit = duration('1d').refine((value) => value > 0, { error: 'must be between 1ms and 1d' });

/**
 * What one client may take of the bridge: connections (Postfix's
 * smtpd_client_connection_count_limit), time (a whole command line, a whole
 * session) and commands that get nowhere (smtpd_junk_command_limit,
 * smtpd_hard_error_limit). The defaults sit far above what a LAN device uses.
 */
export const LIMITS_DEFAULTS = {
  max_connections: 500,
  max_connections_per_ip: 100,
  line_timeout: 60_000,
  session_timeout: 30 * 60_000,
  max_junk_commands: 100,
  max_errors: 20,
};

const limitsSchema = z.strictObject({
  max_connections: count(1, 100_000).default(LIMITS_DEFAULTS.max_connections),
  max_connections_per_ip: count(1, 100_000).default(LIMITS_DEFAULTS.max_connections_per_ip),
  line_timeout: timeLimit.default(LIMITS_DEFAULTS.line_timeout),
  session_timeout: timeLimit.default(LIMITS_DEFAULTS.session_timeout),
  max_junk_commands: count(1, 100_000).default(LIMITS_DEFAULTS.max_junk_commands),
  max_errors: count(1, 100_000).default(LIMITS_DEFAULTS.max_errors),
});

const alertSchema = z.strictObject({
  command: nonEmpty.optional(),
  webhook: z.url({ protocol: /^https?$/, error: (iss) => `not an http(s) URL: ${quoted(iss.input)}` }).optional(),
  timeout: duration('5m').default(10_000),
  upstream_failing_after: duration('30d').default(15 * 60_000),
  queue_age: duration('30d').default(3_600_000),
});

/** "ADDRESS:PORT", with IPv6 addresses in brackets ("[::1]:8025"). */
const hostPort = z.string({ error: 'must be ADDRESS:PORT, like 127.0.0.1:8025' }).transform((value, ctx) => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const host = match?.[1] ?? match?.[2];
  const number = Number(match?.[3]);
  if (!host || isIP(host) === 0 || number < 1 || number > 65535) {
    ctx.addIssue({ code: 'custom', message: `not ADDRESS:PORT: ${quoted(value)} (use e.g. 127.0.0.1:8025 or [::1]:8025)` });
    return z.NEVER;
  }
  return { host, port: number };
});

/** Whether only this machine can reach an address: anything else needs a password. */
export function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === '::1' || /^::ffff:127\./i.test(host);
}

const httpSchema = z.strictObject({
  listen: hostPort,
  ...secretSources,
});

const logSchema = z.strictObject({
  level: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], { error: (iss) => `unknown log level ${quoted(iss.input)}` })
    .default('info'),
  /** json: one JSON line per event; pretty: readable lines; auto: pretty on an interactive terminal, JSON otherwise. */
  format: z
    .enum(['auto', 'json', 'pretty'], { error: (iss) => `unknown log format ${quoted(iss.input)} (auto, json or pretty)` })
    .default('auto'),
});

const isRecord = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A network entry that parsed: a wrong one has its own error already. */
function isNetwork(value: unknown): value is string {
  try {
    parseNetwork(value as string);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks that span several keys (an unknown upstream, two password sources,
 * a username used twice, ...). zod would skip them while any field is wrong;
 * the config here may therefore be partly raw input, hence the shape checks.
 */
function crossFieldChecks(config: z.output<typeof configFields>, ctx: z.RefinementCtx): void {
  const usernames = new Map<string, string>();
  const upstreams = isRecord(config.upstreams) ? config.upstreams : {};
  const listeners = Array.isArray(config.listen) ? config.listen.filter(isRecord) : [];
  for (const [name, device] of Object.entries(isRecord(config.devices) ? config.devices : {})) {
    if (!isRecord(device)) continue;
    const at = (key: string) => ['devices', name, key];
    if (typeof device.upstream === 'string' && !(device.upstream in upstreams)) {
      ctx.addIssue({ code: 'custom', path: at('upstream'), message: `no upstream named ${quoted(device.upstream)}` });
    }
    for (const key of ['rewrite_sender', 'rewrite_from'] as const) {
      if (device[key] === true && upstreams[device.upstream]?.type === 'directory') {
        ctx.addIssue({
          code: 'custom',
          path: at(key),
          message: `true means the upstream account, and upstream ${quoted(device.upstream)} has none: give an address`,
        });
      }
    }
    const sources = (['password', 'password_env', 'password_file', 'secret'] as const).filter((key) => device[key] !== undefined);
    if (typeof device.max_size === 'number' && typeof config.max_message_size === 'number' && device.max_size > config.max_message_size) {
      ctx.addIssue({
        code: 'custom',
        path: at('max_size'),
        message: `must not exceed max_message_size (${config.max_message_size} bytes)`,
      });
    }
    if (device.allow_cleartext_auth && device.min_tls) {
      ctx.addIssue({
        code: 'custom',
        path: at('allow_cleartext_auth'),
        message: 'contradicts min_tls: a device cannot both need TLS and authenticate without it',
      });
    }
    if (device.allow_cleartext_auth && !listeners.some((listener) => listener.allow_cleartext_auth)) {
      ctx.addIssue({
        code: 'custom',
        path: at('allow_cleartext_auth'),
        message: 'no listener has allow_cleartext_auth: true, so this device could never use it',
      });
    }
    if (device.auth === 'none') {
      if (sources.length > 0) ctx.addIssue({ code: 'custom', path: at(sources[0]), message: 'a device with auth: none takes no password' });
      if (!device.networks)
        ctx.addIssue({
          code: 'custom',
          path: at('networks'),
          message: 'a device with auth: none needs networks: it is identified by address alone',
        });
      device.networks?.forEach((network, index) => {
        if (device.allow_wide_networks || !isNetwork(network) || isLanSized(parseNetwork(network))) return;
        ctx.addIssue({
          code: 'custom',
          path: ['devices', name, 'networks', index],
          message: `${network} is wider than a LAN, and anyone in it could send as this device without a password; narrow it (private range, /16 or /48 at most) or set allow_wide_networks: true`,
        });
      });
      continue;
    }
    if (sources.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: sources.length ? at(sources[1]) : ['devices', name],
        message: 'give exactly one of password, password_env, password_file, secret',
      });
    }
    if (Array.isArray(device.secret) && device.secret.every(isRecord) && Array.isArray(device.mechanisms)) {
      const served = new Set(device.secret.flatMap((form) => SCHEME_MECHANISMS[form.scheme]));
      const unserved = device.mechanisms.filter((mechanism) => !served.has(mechanism));
      if (unserved.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: at('secret'),
          message: `no stored form serves ${unserved.join(', ')}; make one with smtp-bridge hash-secret --mechanisms ${device.mechanisms.join(',')}`,
        });
      }
    }
    if (device.generate_password && !device.password_file) {
      ctx.addIssue({
        code: 'custom',
        path: at('generate_password'),
        message: 'generate_password needs password_file (where to keep it)',
      });
    }
    const username = (typeof device.username === 'string' ? device.username : name).toLowerCase();
    const other = usernames.get(username);
    if (other)
      ctx.addIssue({
        code: 'custom',
        path: at('username'),
        message: `username ${quoted(username)} is already used by device ${quoted(other)}`,
      });
    usernames.set(username, name);
  }
  for (const [name, upstream] of Object.entries(upstreams)) {
    if (!isRecord(upstream) || upstream.type !== 'smtp') continue;
    if (isRecord(upstream.auth)) checkUpstreamAuth(upstream.auth, ['upstreams', name, 'auth'], ctx);
    if (!Array.isArray(upstream.fallback)) continue;
    upstream.fallback.forEach((other, index) => {
      const at = ['upstreams', name, 'fallback', index];
      const target: unknown = upstreams[other];
      if (other === name) ctx.addIssue({ code: 'custom', path: at, message: 'an upstream cannot be its own fallback' });
      else if (!isRecord(target) || (target as { type?: unknown }).type !== 'smtp')
        ctx.addIssue({ code: 'custom', path: at, message: `no smtp upstream named ${quoted(other)}` });
      else if (Array.isArray((target as { fallback?: unknown }).fallback))
        // One level only: a chain of chains could loop, and nobody can read it at 3 a.m.
        ctx.addIssue({ code: 'custom', path: at, message: `${quoted(other)} has a fallback of its own; list every upstream here instead` });
    });
  }
  const http = config.http;
  if (http && isRecord(http)) {
    const sources = (['password', 'password_env', 'password_file'] as const).filter((key) => http[key] !== undefined);
    if (sources.length > 1)
      ctx.addIssue({ code: 'custom', path: ['http', sources[1]], message: 'give at most one of password, password_env, password_file' });
    // A listen value that did not parse is still a string here, with its own error.
    if (sources.length === 0 && isRecord(http.listen) && !isLoopback(http.listen.host))
      ctx.addIssue({
        code: 'custom',
        path: ['http', 'listen'],
        message: `${http.listen.host} is reachable from other machines: give http.password, password_env or password_file (HTTP basic auth)`,
      });
  }
  if (config.alert && isRecord(config.alert) && !config.alert.command && !config.alert.webhook) {
    ctx.addIssue({ code: 'custom', path: ['alert'], message: 'give a command, a webhook, or both' });
  }
  const seen = new Set<string>();
  listeners.forEach((listener, index) => {
    const key = `${listener.address}:${listener.port}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['listen', index, 'port'], message: `${key} is listed twice` });
    seen.add(key);
  });
}

const configFields = z.strictObject({
  hostname: nonEmpty.default('smtp-bridge.lan'),
  /** DIGEST-MD5 realm; the hostname when absent (resolved below, so every stage sees one value). */
  sasl_realm: nonEmpty.optional(),
  listen: z.array(listenerSchema, { error: 'must be a list of listeners' }).min(1, { error: 'must name at least one listener' }),
  tls: inboundTlsSchema.default({ cert_file: 'certs/bridge.crt', key_file: 'certs/bridge.key', min_version: 'TLSv1.2' }),
  max_message_size: size('1GB').default(26214400),
  greeting_delay_ms: count(0, 10_000).default(0),
  spool: z.strictObject({ dir: nonEmpty.default('spool') }).default({ dir: 'spool' }),
  delivery: z
    .strictObject({
      sync_wait: duration('5m').default(10_000),
      retry_initial: duration('1d').default(60_000),
      retry_max: duration('1d').default(3_600_000),
      max_age: duration('90d').default(5 * 86_400_000),
      shutdown_wait: duration('10m').default(10_000),
    })
    .default({ sync_wait: 10_000, retry_initial: 60_000, retry_max: 3_600_000, max_age: 5 * 86_400_000, shutdown_wait: 10_000 }),
  upstreams: z.record(z.string(), upstreamSchema, { error: 'must be a map of upstream names to upstreams' }),
  devices: z.record(z.string(), deviceSchema, { error: 'must be a map of device names to devices' }),
  log: logSchema.default({ level: 'info', format: 'auto' }),
  lockout: lockoutSchema.default(LOCKOUT_DEFAULTS),
  limits: limitsSchema.default(LIMITS_DEFAULTS),
  alert: alertSchema.optional(),
  http: httpSchema.optional(),
});

type UpstreamAuth = z.output<typeof smtpUpstreamSchema>['auth'];

/** The auth block of one smtp upstream; like crossFieldChecks, it may see raw input. */
function checkUpstreamAuth(auth: UpstreamAuth, at: (string | number)[], ctx: z.RefinementCtx): void {
  const sources = (['password', 'password_env', 'password_file'] as const).filter((key) => auth[key] !== undefined);
  const oauth = isRecord(auth.oauth) ? auth.oauth : undefined;
  if (auth.mechanism !== 'XOAUTH2') {
    if (auth.oauth !== undefined)
      ctx.addIssue({ code: 'custom', path: [...at, 'oauth'], message: 'an oauth block needs mechanism: XOAUTH2' });
    if (sources.length !== 1)
      ctx.addIssue({ code: 'custom', path: at, message: 'give exactly one of password, password_env, password_file' });
    return;
  }
  // Never a password beside a token: falling back to Basic auth is what the providers are switching off.
  if (sources.length > 0)
    ctx.addIssue({
      code: 'custom',
      path: [...at, sources[0]],
      message: 'XOAUTH2 takes no password; the oauth block says how to get tokens',
    });
  if (!oauth) {
    if (auth.oauth === undefined)
      ctx.addIssue({ code: 'custom', path: at, message: 'mechanism XOAUTH2 needs an oauth block (provider or token_url, client_id)' });
    return;
  }
  const where = (key: string) => [...at, 'oauth', key];
  if (!oauth.provider && !oauth.token_url)
    ctx.addIssue({ code: 'custom', path: [...at, 'oauth'], message: 'give provider (microsoft or google) or token_url' });
  if (oauth.tenant !== undefined && oauth.provider !== 'microsoft')
    ctx.addIssue({ code: 'custom', path: where('tenant'), message: 'tenant is for provider: microsoft only' });
  const secrets = (['client_secret', 'client_secret_env', 'client_secret_file'] as const).filter((key) => oauth[key] !== undefined);
  if (secrets.length > 1)
    ctx.addIssue({
      code: 'custom',
      path: where(secrets[1]),
      message: 'give at most one of client_secret, client_secret_env, client_secret_file',
    });
  if (oauth.grant === 'client_credentials') {
    if (oauth.provider === 'google')
      ctx.addIssue({ code: 'custom', path: where('grant'), message: 'Google has no client_credentials grant for mail; use refresh_token' });
    if (secrets.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: where('grant'),
        message: 'client_credentials needs a client secret (an app-only client is confidential)',
      });
  }
}

export const configSchema = configFields
  // Runs even when fields are wrong, so that one run reports every mistake (see crossFieldChecks).
  .superRefine((config, ctx) => crossFieldChecks(config, ctx), { when: (payload) => isRecord(payload.value) })
  .transform((config) => {
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      if (upstream.type === 'smtp' && upstream.auth.oauth) upstream.auth.oauth.token_file ??= `tokens/${name}.json`;
    }
    return { ...config, sasl_realm: config.sasl_realm ?? config.hostname };
  });

export type Config = z.output<typeof configSchema>;
export type Listener = Config['listen'][number];
export type Device = Config['devices'][string];
export type Upstream = Config['upstreams'][string];
export type SmtpUpstream = Extract<Upstream, { type: 'smtp' }>;
export type DirectoryUpstream = Extract<Upstream, { type: 'directory' }>;
export type OAuthSettings = NonNullable<SmtpUpstream['auth']['oauth']>;
export type Rate = z.output<typeof rate>;
export type LockoutSettings = Config['lockout'];
export type AlertSettings = NonNullable<Config['alert']>;
export type HttpSettings = NonNullable<Config['http']>;
export type DeliverySettings = Config['delivery'];
export type LimitSettings = Config['limits'];
