import bytes from 'bytes';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.js';
import ms from 'ms';
import { formatRate, LAN_NETWORKS, type Config, type Device, type Listener, type Upstream } from '../config/schema.js';
import { DevicePolicy } from '../policy/devices.js';
import { CONFIG_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand } from './args.js';

const USAGE = `usage: smtp-bridge check-config [-c FILE]

Validates the config file, resolves its secrets and prints a summary
(never a password). Exit 0 if the config is good, 1 if not, 2 on bad usage.

options:
  -c, --config FILE   config file (default ${DEFAULT_CONFIG})
  -h, --help          show this help`;

export async function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseCommandArgs(argv, CONFIG_OPTION, USAGE);
    let loaded: LoadedConfig;
    try {
      loaded = await loadConfig(values.config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(err.message);
      return 1;
    }
    console.log(summary(loaded));
    return 0;
  });
}

function summary({ config, file, warnings }: LoadedConfig): string {
  const listeners = config.listen.map((listener) => [hostPort(listener.address, listener.port), listener] as const);
  const width = Math.max(...listeners.map(([address]) => address.length));
  const lines = [
    `config:    ${file} (ok)`,
    `hostname:  ${config.hostname}`,
    `realm:     ${config.sasl_realm} (DIGEST-MD5)`,
    `tls:       min ${config.tls.min_version}, cert ${config.tls.cert_file}, key ${config.tls.key_file}`,
    `spool:     ${config.spool.dir}`,
    `max size:  ${bytes.format(config.max_message_size)}`,
    `lockout:   ${describeLockout(config.lockout)}`,
    `limits:    ${describeLimits(config.limits)}`,
    `alert:     ${describeAlert(config.alert)}`,
    '',
    'listeners:',
    ...listeners.map(
      ([address, listener]) =>
        `  ${address.padEnd(width)}  tls ${listener.tls.padEnd(8)}  ${cleartextAuth(listener)}${listener.auth_equals ? '' : ', no AUTH= line'}`,
    ),
    '',
    'upstreams:',
    ...Object.entries(config.upstreams).map(([name, upstream]) => `  ${name}: ${describeUpstream(upstream)}`),
    '',
    'devices:',
    ...Object.entries(config.devices).flatMap(([name, device]) => describeDevice(name, device)),
  ];
  if (warnings.length > 0) lines.push('', 'warnings:', ...warnings.map((warning) => `  ${warning}`));
  return lines.join('\n');
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function cleartextAuth(listener: Listener): string {
  if (listener.tls === 'implicit') return 'no cleartext';
  return listener.allow_cleartext_auth ? 'cleartext AUTH allowed' : 'cleartext AUTH refused';
}

function describeUpstream(upstream: Upstream): string {
  if (upstream.type === 'directory') return `directory ${upstream.path} (capture: writes .eml files, delivers nowhere)`;
  const address = upstream.port === undefined ? `${upstream.host} (default port)` : hostPort(upstream.host, upstream.port);
  const parts = [
    `smtp ${address}`,
    `tls ${upstream.tls}, min ${upstream.min_version}`,
    `auth ${upstream.auth.user} with ${upstream.auth.mechanism}`,
  ];
  const { oauth } = upstream.auth;
  if (oauth) {
    const client = oauth.client_secret === undefined ? 'public client' : 'client secret set';
    parts.push(`oauth ${oauth.provider ?? oauth.token_url} (${oauth.grant}, ${client}, tokens in ${oauth.token_file})`);
  }
  if (upstream.fallback?.length) parts.push(`fallback ${upstream.fallback.join(', ')}`);
  parts.push(`up to ${upstream.concurrency} at once`);
  if (upstream.rate) parts.push(`rate ${upstream.rate.map(formatRate).join(', ')}`);
  if (upstream.ca_file) parts.push(`ca ${upstream.ca_file}`);
  return parts.join(', ');
}

function describeLockout(lockout: Config['lockout']): string {
  const failures = (count: number, scope: string) => (count === 0 ? `never per ${scope}` : `${count} failed AUTHs per ${scope}`);
  const client = `client (IPv4 address, IPv6 /${lockout.ipv6_prefix})`;
  return `${failures(lockout.ip_failures, client)}, ${failures(lockout.username_failures, 'username')} within ${ms(lockout.window)}; locked ${ms(lockout.duration)}, doubling up to ${ms(lockout.max_duration)}`;
}

function describeLimits(limits: Config['limits']): string {
  return `${limits.max_connections} connections, ${limits.max_connections_per_ip} per client; ${ms(limits.line_timeout)} per command line, ${ms(limits.session_timeout)} per session; ${limits.max_junk_commands} junk commands or ${limits.max_errors} errors without progress`;
}

function describeAlert(alert: Config['alert']): string {
  if (!alert) return 'none (a freeze is only logged)';
  return [alert.command && `command ${JSON.stringify(alert.command)}`, alert.webhook && `webhook ${alert.webhook}`]
    .filter(Boolean)
    .join(', ');
}

function describeDevice(name: string, device: Device): string[] {
  const policy = new DevicePolicy(name, device);
  const budgets = [
    ...policy.messageLimits.map((rate) => `${formatRate(rate)} messages`),
    ...policy.recipientLimits.map((rate) => `${formatRate(rate)} recipients`),
    ...(device.max_recipients === undefined ? [] : [`${device.max_recipients} recipients per message`]),
    ...(device.max_size === undefined ? [] : [`${bytes.format(device.max_size)} per message`]),
  ];
  const secret = device.secret ? [`    secret:     ${device.secret.map((form) => `{${form.scheme}}`).join(', ')} (stored forms)`] : [];
  const tls = [
    ...(device.min_tls ? [`    tls:        ${device.min_tls} or later`] : []),
    ...(device.allow_cleartext_auth ? ['    tls:        AUTH without TLS allowed, from its networks'] : []),
  ];
  const dataEnd = device.allow_bare_lf_dot ? ['    data end:   <LF>.<LF> too (allow_bare_lf_dot: no smuggling protection)'] : [];
  return [
    `  ${name}`,
    ...(device.auth === 'none'
      ? ['    auth:       none (identified by network)']
      : [`    username:   ${device.username ?? name}`, `    auth:       required, mechanisms ${device.mechanisms.join(', ')}`, ...secret]),
    ...tls,
    ...dataEnd,
    `    networks:   ${device.networks ? device.networks.join(', ') : `LAN default (${LAN_NETWORKS.join(', ')})`}`,
    `    senders:    ${device.senders.join(', ')}`,
    `    recipients: ${device.recipients ? device.recipients.join(', ') : 'any'}`,
    `    upstream:   ${device.upstream}`,
    `    limits:     ${budgets.length > 0 ? budgets.join(', ') : 'none (a leaked password could send without limit)'}`,
    `    freeze:     ${policy.freezeAfter ? `after more than ${formatRate(policy.freezeAfter)} message attempts` : 'never'}`,
  ];
}
