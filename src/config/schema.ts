import { isIP } from 'node:net';
import bytes from 'bytes';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/** SASL mechanisms a device may be allowed to use towards the bridge. */
export const DEVICE_MECHANISMS = ['PLAIN', 'LOGIN', 'CRAM-MD5'] as const;
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
    if (ipaddr.isValid(value)) return true;
    try {
      ipaddr.parseCIDR(value);
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

/** A size in bytes, written as a number or with a unit ("25MB"). */
const size = z.union([z.number().int().positive(), z.string()], { error: 'must be a size like 25MB' }).transform((value, ctx) => {
  const parsed = typeof value === 'number' ? value : bytes.parse(value);
  if (parsed === null || !Number.isFinite(parsed) || parsed <= 0) {
    ctx.addIssue({ code: 'custom', message: `not a size: ${quoted(value)} (use e.g. 25MB)` });
    return z.NEVER;
  }
  return Math.floor(parsed);
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
});

const inboundTlsSchema = z.strictObject({
  cert_file: nonEmpty.default('certs/bridge.crt'),
  key_file: nonEmpty.default('certs/bridge.key'),
  min_version: tlsVersion.default('TLSv1.2'),
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
  connect_timeout: z.number().int().positive().default(15000),
  auth: z.strictObject({
    user: nonEmpty,
    ...secretSources,
    mechanism: z
      .enum(['PLAIN', 'LOGIN'], { error: (iss) => `unknown upstream mechanism ${quoted(iss.input)} (use PLAIN or LOGIN)` })
      .default('PLAIN'),
  }),
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

const deviceSchema = z.strictObject({
  username: nonEmpty.optional(),
  auth: z.enum(['required', 'none'], { error: (iss) => `unknown auth mode ${quoted(iss.input)} (use required or none)` }).default('required'),
  ...secretSources,
  generate_password: z.boolean({ error: 'must be true or false' }).default(false),
  mechanisms: z
    .array(z.enum(DEVICE_MECHANISMS, { error: (iss) => `unknown mechanism ${quoted(iss.input)}` }), { error: 'must be a list of mechanisms' })
    .min(1, { error: 'must name at least one mechanism' })
    .default(['PLAIN', 'LOGIN', 'CRAM-MD5']),
  networks: z.array(cidr, { error: 'must be a list of networks' }).min(1, { error: 'must name at least one network' }).optional(),
  senders: z.array(addressRule, { error: 'must be a list of addresses' }).min(1, { error: 'must name at least one sender' }),
  recipients: z.array(addressRule, { error: 'must be a list of addresses' }).min(1, { error: 'must name at least one recipient' }).optional(),
  upstream: nonEmpty,
});

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], { error: (iss) => `unknown log level ${quoted(iss.input)}` }).default('info'),
});

export const configSchema = z
  .strictObject({
    hostname: nonEmpty.default('smtp-bridge.lan'),
    listen: z.array(listenerSchema, { error: 'must be a list of listeners' }).min(1, { error: 'must name at least one listener' }),
    tls: inboundTlsSchema.default({ cert_file: 'certs/bridge.crt', key_file: 'certs/bridge.key', min_version: 'TLSv1.2' }),
    max_message_size: size.default(26214400),
    greeting_delay_ms: z.number().int().min(0).max(10000).default(0),
    spool: z.strictObject({ dir: nonEmpty.default('spool') }).default({ dir: 'spool' }),
    upstreams: z.record(z.string(), upstreamSchema, { error: 'must be a map of upstream names to upstreams' }),
    devices: z.record(z.string(), deviceSchema, { error: 'must be a map of device names to devices' }),
    log: logSchema.default({ level: 'info' }),
  })
  .superRefine((config, ctx) => {
    const usernames = new Map<string, string>();
    for (const [name, device] of Object.entries(config.devices)) {
      const at = (key: string) => ['devices', name, key];
      if (!(device.upstream in config.upstreams)) {
        ctx.addIssue({ code: 'custom', path: at('upstream'), message: `no upstream named ${quoted(device.upstream)}` });
      }
      const sources = (['password', 'password_env', 'password_file'] as const).filter((key) => device[key] !== undefined);
      if (device.auth === 'none') {
        if (sources.length > 0) ctx.addIssue({ code: 'custom', path: at(sources[0]), message: 'a device with auth: none takes no password' });
        if (!device.networks) ctx.addIssue({ code: 'custom', path: at('networks'), message: 'a device with auth: none needs networks: it is identified by address alone' });
        continue;
      }
      if (sources.length !== 1) {
        ctx.addIssue({ code: 'custom', path: sources.length ? at(sources[1]) : ['devices', name], message: 'give exactly one of password, password_env, password_file' });
      }
      if (device.generate_password && !device.password_file) {
        ctx.addIssue({ code: 'custom', path: at('generate_password'), message: 'generate_password needs password_file (where to keep it)' });
      }
      const username = (device.username ?? name).toLowerCase();
      const other = usernames.get(username);
      if (other) ctx.addIssue({ code: 'custom', path: at('username'), message: `username ${quoted(username)} is already used by device ${quoted(other)}` });
      usernames.set(username, name);
    }
    for (const [name, upstream] of Object.entries(config.upstreams)) {
      if (upstream.type !== 'smtp') continue;
      const sources = (['password', 'password_env', 'password_file'] as const).filter((key) => upstream.auth[key] !== undefined);
      if (sources.length !== 1) {
        ctx.addIssue({ code: 'custom', path: ['upstreams', name, 'auth'], message: 'give exactly one of password, password_env, password_file' });
      }
    }
    const seen = new Set<string>();
    config.listen.forEach((listener, index) => {
      const key = `${listener.address}:${listener.port}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['listen', index, 'port'], message: `${key} is listed twice` });
      seen.add(key);
    });
  });

export type Config = z.output<typeof configSchema>;
export type Listener = Config['listen'][number];
export type Device = Config['devices'][string];
export type Upstream = Config['upstreams'][string];
export type SmtpUpstream = Extract<Upstream, { type: 'smtp' }>;
export type DirectoryUpstream = Extract<Upstream, { type: 'directory' }>;
export type InboundTls = Config['tls'];
