import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { TLS_VERSIONS, type TlsVersion } from '../config/schema.js';
import { parseCommandArgs, runCommand, UsageError } from './args.js';
import { SmtpDialogue } from './smtp-dialogue.js';
import { printTable } from './table.js';

const HELP = `usage: smtp-bridge probe HOST[:PORT] [--starttls|--implicit] [--ca-file FILE] [--timeout SECONDS]

Shows what an SMTP server offers: which TLS versions it completes a
handshake with and the cipher; the AUTH mechanisms before and after
STARTTLS; SIZE, PIPELINING and SMTPUTF8; its certificate and whether it
verifies. Run against a provider it tells you what to put in upstreams:;
run against the bridge it shows what a device will see. Sends no
credentials and no message.

The default port is 465 with --implicit (the default) and 587 with --starttls.

options:
      --starttls         plain connection, then STARTTLS
      --implicit         TLS from the first byte ("SSL", port 465)
      --ca-file FILE     verify the certificate against this CA instead of the system's
      --timeout SECONDS  per step (default 10)
  -h, --help             show this help`;

/** What one TLS version's attempt found. */
interface VersionResult {
  version: TlsVersion;
  cipher?: string;
  error?: string;
  before?: string[];
  after?: string[];
  certificate?: tls.PeerCertificate;
  verifyError?: string;
}

const EHLO = 'EHLO probe.smtp-bridge';
// OpenSSL 3 refuses TLS 1.0/1.1 below security level 0; the point here is to see what the server would do.
const ANY_CIPHER = 'DEFAULT:@SECLEVEL=0';

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        starttls: { type: 'boolean' },
        implicit: { type: 'boolean' },
        'ca-file': { type: 'string' },
        timeout: { type: 'string', default: '10' },
      },
      HELP,
      true,
    );
    if (positionals.length !== 1) throw new UsageError(HELP);
    if (values.starttls && values.implicit) throw new UsageError(`give --starttls or --implicit, not both\n\n${HELP}`);
    const mode = values.starttls ? 'starttls' : 'implicit';
    const { host, port } = parseTarget(positionals[0], mode === 'implicit' ? 465 : 587);
    const timeoutMs = Number(values.timeout) * 1000;
    if (!(timeoutMs > 0)) throw new UsageError(`--timeout must be a number of seconds\n\n${HELP}`);
    const ca = values['ca-file'] ? await readFile(values['ca-file'], 'utf8') : undefined;

    const results: VersionResult[] = [];
    for (const version of TLS_VERSIONS) results.push(await tryVersion(host, port, mode, version, timeoutMs, ca));
    const best = [...results].reverse().find((result) => result.cipher);
    const before = results.find((result) => result.before)?.before;
    if (!best && !before) throw new Error(`${host}:${port}: ${results[results.length - 1].error}`);

    console.log(`${host}:${port} (${mode === 'implicit' ? 'implicit TLS' : 'STARTTLS'})\n`);
    printTable(results, (r) => [r.version, r.cipher ? 'yes' : 'no', r.cipher ?? '-'], ['TLS', 'handshake', 'cipher']);
    console.log('');
    const mechanisms = (ehlo?: string[]) => {
      const line = ehlo?.find((text) => /^AUTH[ =]/i.test(text));
      return line ? line.slice(5).trim().split(/\s+/).join(' ') : '-';
    };
    const extension = (ehlo: string[] | undefined, name: string) => {
      const line = ehlo?.find((text) => text.toUpperCase() === name || text.toUpperCase().startsWith(`${name} `));
      return line === undefined ? (ehlo ? 'no' : '-') : line.slice(name.length).trim() || 'yes';
    };
    const rows: [string, string, string][] = [
      ['AUTH', mode === 'starttls' ? mechanisms(before) : '-', mechanisms(best?.after)],
      ...['SIZE', 'PIPELINING', 'SMTPUTF8', 'STARTTLS'].map(
        (name) => [name, mode === 'starttls' ? extension(before, name) : '-', extension(best?.after, name)] as [string, string, string],
      ),
    ];
    printTable(rows, (row) => row, ['EHLO', 'before TLS', 'after TLS']);
    console.log('');
    if (best?.certificate) {
      const cert = best.certificate;
      printTable(
        [
          ['subject', describeName(cert.subject)],
          ['issuer', describeName(cert.issuer)],
          ['expires', new Date(cert.valid_to).toISOString()],
          ['verifies', best.verifyError ? `no: ${best.verifyError}` : `yes, for ${host}`],
        ],
        (row) => row,
        ['certificate', ''],
      );
      console.log('');
    }
    console.log(advice(results, best, mode, mechanisms(best?.after)));
    return 0;
  });
}

function parseTarget(target: string, defaultPort: number): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(target);
  if (!match) throw new UsageError(`not HOST[:PORT]: ${target}\n\n${HELP}`);
  return { host: match[1] ?? match[2], port: match[3] ? Number(match[3]) : defaultPort };
}

async function tryVersion(
  host: string,
  port: number,
  mode: 'starttls' | 'implicit',
  version: TlsVersion,
  timeoutMs: number,
  ca?: string,
): Promise<VersionResult> {
  const options: tls.ConnectionOptions = {
    minVersion: version,
    maxVersion: version,
    ciphers: ANY_CIPHER,
    rejectUnauthorized: false,
    ca,
    servername: isIP(host) ? undefined : host,
  };
  const result: VersionResult = { version };
  let dialogue: SmtpDialogue | undefined;
  try {
    dialogue = await SmtpDialogue.open(host, port, timeoutMs, mode === 'implicit' ? options : undefined);
    await expect(dialogue.reply(), 220, 'greeting');
    if (mode === 'starttls') {
      result.before = (await expect(dialogue.command(EHLO), 250, 'EHLO')).lines.slice(1);
      await expect(dialogue.command('STARTTLS'), 220, 'STARTTLS');
      await dialogue.upgrade(options);
    }
    const socket = dialogue.tlsSocket!;
    result.cipher = socket.getCipher().name;
    result.certificate = socket.getPeerCertificate();
    result.verifyError = socket.authorized ? tls.checkServerIdentity(host, result.certificate)?.message : String(socket.authorizationError);
    result.after = (await expect(dialogue.command(EHLO), 250, 'EHLO after TLS')).lines.slice(1);
    await dialogue.command('QUIT').catch(() => undefined);
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    dialogue?.close();
  }
  return result;
}

async function expect(pending: Promise<{ code: number; lines: string[] }>, code: number, what: string) {
  const reply = await pending;
  if (reply.code !== code) throw new Error(`${what}: ${reply.code} ${reply.lines.join(' ')}`);
  return reply;
}

function describeName(name: tls.PeerCertificate['subject']): string {
  return Object.entries(name ?? {})
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : value}`)
    .join(', ');
}

/** What to write in an upstream entry for this server, and what a device of the bridge would meet. */
function advice(results: VersionResult[], best: VersionResult | undefined, mode: string, mechanisms: string): string {
  if (!best) return 'No TLS handshake completed: the bridge sends no credentials to this server.';
  const lowest = results.find((result) => result.cipher)!.version;
  const devices = `A device sees: TLS ${lowest === best.version ? lowest : `${lowest} to ${best.version}`}, AUTH ${mechanisms}.`;
  if (best.version === 'TLSv1' || best.version === 'TLSv1.1')
    return `As an upstream: unusable, it offers nothing above ${best.version} and the bridge needs TLSv1.2.\n${devices}`;
  const offered = mechanisms.split(' ');
  const mechanism = offered.includes('PLAIN') ? 'PLAIN' : offered.includes('LOGIN') ? 'LOGIN' : undefined;
  const auth = mechanism ? `auth.mechanism: ${mechanism}` : 'no PLAIN or LOGIN offered, which the bridge needs';
  const verify = best.verifyError ? `; the certificate does not verify: set ca_file, or check the host name` : '';
  return `As an upstream: tls: ${mode}, ${auth}${verify}.\n${devices}`;
}
