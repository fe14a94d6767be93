import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type tls from 'node:tls';
import { cramMd5Answer, digestMd5Answer } from '../auth/client-response.js';
import { loadConfig } from '../config/load.js';
import { DEVICE_MECHANISMS, TLS_VERSIONS, type Config, type DeviceMechanism, type TlsVersion } from '../config/schema.js';
import { CONFIG_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand, stringOptions, UsageError } from './args.js';
import { readPassword } from './password-input.js';
import { SmtpDialogue, type SmtpReply } from './smtp-dialogue.js';

const HELP = `usage: smtp-bridge send-test --device NAME [--mechanism M] [--tls VERSION] --to ADDR [options]
       smtp-bridge send-test --upstream NAME --to ADDR [options]

Sends one short test message and prints the SMTP conversation, with AUTH
lines masked.

--device sends through the running bridge as that device would: to a
listener of the config (STARTTLS if there is one, else implicit TLS, else
none), logging in with the device's password and mechanism. A device with
only a stored secret needs --password -.

--upstream sends straight to that provider with the configured account,
TLS and CA, as the bridge does: what the provider says is what the bridge
would hear.

options:
      --mechanism M      PLAIN, LOGIN, CRAM-MD5 or DIGEST-MD5 (default: the device's first)
      --tls VERSION      pin the TLS version: 1.0, 1.1, 1.2 or 1.3 (device only)
      --from ADDR        sender (default: the device's first sender address, or the account)
      --password -       read the device password from standard input
      --timeout SECONDS  per step (default 20)
  -c, --config FILE      config file (default ${DEFAULT_CONFIG})
  -h, --help             show this help`;

/** Where to connect and how to log in: a device towards the bridge, or the bridge towards a provider. */
interface Route {
  host: string;
  port: number;
  mode: 'starttls' | 'implicit' | 'none';
  tls: tls.ConnectionOptions;
  username: string;
  password: string;
  /** None for a device with auth: none. */
  mechanism?: DeviceMechanism;
  from: string;
  label: string;
}

const MASKED = '********';

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseCommandArgs(
      argv,
      {
        ...CONFIG_OPTION,
        ...stringOptions('device', 'upstream', 'mechanism', 'tls', 'to', 'from', 'password'),
        timeout: { type: 'string', default: '20' },
      },
      HELP,
    );
    if (!values.to) throw new UsageError(`--to is required\n\n${HELP}`);
    if (Boolean(values.device) === Boolean(values.upstream)) throw new UsageError(`give --device or --upstream\n\n${HELP}`);
    if (values.password !== undefined && values.password !== '-')
      throw new UsageError(`--password takes only "-" (standard input)\n\n${HELP}`);
    const timeoutMs = Number(values.timeout) * 1000;
    if (!(timeoutMs > 0)) throw new UsageError(`--timeout must be a number of seconds\n\n${HELP}`);
    const { config } = await loadConfig(values.config!);
    const route = values.device ? await deviceRoute(config, values.device, values) : await upstreamRoute(config, values.upstream!, values);
    return send(route, values.to, config.hostname, timeoutMs);
  });
}

interface RouteOptions {
  mechanism?: string;
  tls?: string;
  from?: string;
  password?: string;
}

async function deviceRoute(config: Config, name: string, options: RouteOptions): Promise<Route> {
  const device = config.devices[name];
  if (!device) throw new Error(`no device named "${name}" in the config`);
  const mechanism = (options.mechanism?.toUpperCase() ?? device.mechanisms[0]) as DeviceMechanism;
  if (!DEVICE_MECHANISMS.includes(mechanism)) throw new UsageError(`unknown mechanism "${options.mechanism}"\n\n${HELP}`);
  const version = options.tls && (`TLSv${options.tls.replace(/^(TLSv?)?/i, '')}`.replace('TLSv1.0', 'TLSv1') as TlsVersion);
  if (version && !TLS_VERSIONS.includes(version)) throw new UsageError(`unknown TLS version "${options.tls}"\n\n${HELP}`);
  const listener = config.listen.find((l) => l.tls === 'starttls') ?? config.listen.find((l) => l.tls === 'implicit') ?? config.listen[0];
  // A wildcard listener is reached on this machine's loopback address of the same family.
  const host = listener.address === '0.0.0.0' ? '127.0.0.1' : listener.address === '::' ? '::1' : listener.address;
  const password = options.password === '-' ? await readPassword() : device.password;
  if (device.auth === 'required' && password === undefined)
    throw new Error(`device "${name}" has only a stored secret: give its password with --password - on standard input`);
  const from = options.from ?? device.senders.find((sender) => !sender.startsWith('@'));
  if (!from) throw new UsageError(`device "${name}" allows whole domains only: give --from\n\n${HELP}`);
  return {
    host,
    port: listener.port,
    mode: listener.tls,
    // The bridge's certificate is often self-signed: this is about what the device meets, not about trusting it.
    tls: {
      rejectUnauthorized: false,
      ...(version ? { minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' } : {}),
    },
    username: device.username ?? name,
    password: password ?? '',
    mechanism: device.auth === 'required' ? mechanism : undefined,
    from,
    label: `device ${name} via ${host}:${listener.port}`,
  };
}

async function upstreamRoute(config: Config, name: string, options: RouteOptions): Promise<Route> {
  const upstream = config.upstreams[name];
  if (!upstream) throw new Error(`no upstream named "${name}" in the config`);
  if (upstream.type !== 'smtp') throw new Error(`upstream "${name}" is a capture directory: nothing to send to`);
  if (options.tls || options.mechanism)
    throw new UsageError(`--tls and --mechanism are for --device; an upstream uses its config\n\n${HELP}`);
  const mechanism = upstream.auth.mechanism;
  // The bridge's tokens are kept by the running server's refresher; this command has none to send.
  if (mechanism === 'XOAUTH2')
    throw new Error(
      `upstream "${name}" logs in with XOAUTH2: send-test --upstream does PLAIN and LOGIN accounts; see "smtp-bridge oauth status"`,
    );
  return {
    host: upstream.host,
    port: upstream.port ?? (upstream.tls === 'implicit' ? 465 : 587),
    mode: upstream.tls,
    tls: {
      minVersion: upstream.min_version,
      servername: isIP(upstream.host) ? undefined : upstream.host,
      ca: upstream.ca_file ? await readFile(upstream.ca_file, 'utf8') : undefined,
    },
    username: upstream.auth.user,
    password: upstream.auth.password!,
    mechanism,
    from: options.from ?? upstream.auth.user,
    label: `upstream ${name} at ${upstream.host}`,
  };
}

async function send(route: Route, to: string, hostname: string, timeoutMs: number): Promise<number> {
  const print = (from: 'C' | 'S', text: string) => console.log(`${from}: ${text}`);
  let dialogue: SmtpDialogue | undefined;
  try {
    dialogue = await SmtpDialogue.open(route.host, route.port, timeoutMs, route.mode === 'implicit' ? route.tls : undefined, print);
    const step = async (pending: Promise<SmtpReply>, expected: number) => {
      const reply = await pending;
      if (reply.code !== expected) throw new Error(`the server answered ${reply.code} ${reply.lines.join(' ')}`);
      return reply;
    };
    await step(dialogue.reply(), 220);
    await step(dialogue.command(`EHLO ${hostname}`), 250);
    if (route.mode === 'starttls') {
      await step(dialogue.command('STARTTLS'), 220);
      const socket = await dialogue.upgrade(route.tls);
      console.log(`   (TLS ${socket.getProtocol()}, ${socket.getCipher().name})`);
      await step(dialogue.command(`EHLO ${hostname}`), 250);
    } else if (dialogue.tlsSocket) {
      console.log(`   (TLS ${dialogue.tlsSocket.getProtocol()}, ${dialogue.tlsSocket.getCipher().name})`);
    }
    await authenticate(dialogue, route, step);
    await step(dialogue.command(`MAIL FROM:<${route.from}>`), 250);
    await step(dialogue.command(`RCPT TO:<${to}>`), 250);
    await step(dialogue.command('DATA'), 354);
    const reply = await step(dialogue.data(testMessage(route, to, hostname)), 250);
    await dialogue.command('QUIT').catch(() => undefined);
    console.log(`\nsent (${route.label}): ${reply.code} ${reply.lines.join(' ')}`);
    return 0;
  } catch (err) {
    console.log(`\nnot sent (${route.label}): ${(err as Error).message}`);
    return 1;
  } finally {
    dialogue?.close();
  }
}

type Step = (pending: Promise<SmtpReply>, expected: number) => Promise<SmtpReply>;

/** One SASL exchange; every line the client sends in it is shown masked. */
async function authenticate(dialogue: SmtpDialogue, route: Route, step: Step): Promise<void> {
  const { username, password, mechanism } = route;
  const secret = (line: string) => dialogue.command(line, MASKED);
  switch (mechanism) {
    case 'PLAIN':
      await step(
        dialogue.command(`AUTH PLAIN ${Buffer.from(`\0${username}\0${password}`).toString('base64')}`, `AUTH PLAIN ${MASKED}`),
        235,
      );
      return;
    case 'LOGIN':
      await step(dialogue.command('AUTH LOGIN'), 334);
      await step(secret(Buffer.from(username).toString('base64')), 334);
      await step(secret(Buffer.from(password).toString('base64')), 235);
      return;
    case 'CRAM-MD5': {
      const challenge = await step(dialogue.command('AUTH CRAM-MD5'), 334);
      await step(secret(cramMd5Answer(username, password, challenge.lines[0]).response), 235);
      return;
    }
    case undefined:
      return;
    case 'DIGEST-MD5': {
      const challenge = await step(dialogue.command('AUTH DIGEST-MD5'), 334);
      const answer = digestMd5Answer(username, password, challenge.lines[0]);
      const proof = await step(secret(answer.response), 334);
      if (Buffer.from(proof.lines[0], 'base64').toString() !== `rspauth=${answer.rspauth}`)
        throw new Error('the server did not prove it knows the password (wrong rspauth)');
      await step(dialogue.command(''), 235);
      return;
    }
  }
}

function testMessage(route: Route, to: string, hostname: string): string {
  return [
    `From: <${route.from}>`,
    `To: <${to}>`,
    `Subject: smtp-bridge send-test (${route.label})`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${randomBytes(8).toString('hex')}.send-test@${hostname}>`,
    '',
    `A test message from "smtp-bridge send-test" (${route.label}).`,
    'If it arrived, this way works.',
    '',
  ].join('\r\n');
}
