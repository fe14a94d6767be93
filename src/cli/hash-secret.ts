import { loadConfig } from '../config/load.js';
import { formatStoredSecret, SCHEME_MECHANISMS } from '../auth/stored-secret.js';
import { hashSecret, schemesFor, type DigestIdentity } from '../auth/hash-secret.js';
import { CONFIG_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand, stringOptions, UsageError } from './args.js';
import { readPassword } from './password-input.js';

const KNOWN_MECHANISMS = [...new Set(Object.values(SCHEME_MECHANISMS).flat())];

const HELP = `usage: smtp-bridge hash-secret [--device NAME] [--mechanisms LIST] [--username NAME] [--realm REALM] [-c FILE]

Reads a device password (asked twice without echo on a terminal, else the
first line of standard input) and prints the "secret:" line for the device's
entry: one stored form per kind of mechanism, never the password itself.

  {SCRYPT}      PLAIN and LOGIN (scrypt hash)
  {CRAM-MD5}    CRAM-MD5 (HMAC-MD5 pad state, as Dovecot stores it)
  {DIGEST-MD5}  DIGEST-MD5 (MD5 of username:realm:password; valid for that username and realm only)

The CRAM-MD5 and DIGEST-MD5 forms log in with those mechanisms as well as
the password would: keep the config file private either way.

options:
      --device NAME       take mechanisms, username and realm from this device in the config
      --mechanisms LIST   comma-separated, from ${KNOWN_MECHANISMS.join(', ')} (default: the device's, else PLAIN,LOGIN)
      --username NAME     the username a DIGEST-MD5 form is for (default: the device's)
      --realm REALM       the realm a DIGEST-MD5 form is for (default: the config's sasl_realm)
  -c, --config FILE       config file, read for --device and the realm (default ${DEFAULT_CONFIG})
  -h, --help              show this help`;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseCommandArgs(
      argv,
      {
        ...CONFIG_OPTION,
        ...stringOptions('device', 'mechanisms', 'username', 'realm'),
      },
      HELP,
    );
    const requested = values.mechanisms
      ?.split(',')
      .map((m) => m.trim().toUpperCase())
      .filter(Boolean);
    const unknown = requested?.find((m) => !KNOWN_MECHANISMS.includes(m));
    if (requested?.length === 0 || unknown)
      throw new UsageError(`${unknown ? `unknown mechanism "${unknown}"` : 'no mechanism named'}\n\n${HELP}`);

    // The config is read only when it has something to say: a device's settings, or the realm.
    const wantsDigest = (requested ?? []).includes('DIGEST-MD5');
    const needsConfig = values.device !== undefined || (wantsDigest && values.realm === undefined);
    const config = needsConfig ? (await loadConfig(values.config!, { skipSecrets: true })).config : undefined;
    const device = values.device === undefined ? undefined : config?.devices[values.device];
    if (values.device !== undefined && !device) throw new Error(`no device named "${values.device}" in ${values.config}`);

    const mechanisms = requested ?? device?.mechanisms ?? ['PLAIN', 'LOGIN'];
    const username = values.username ?? (device && (device.username ?? values.device));
    const realm = values.realm ?? config?.sasl_realm;
    let identity: DigestIdentity | undefined;
    if (mechanisms.includes('DIGEST-MD5')) {
      if (username === undefined || realm === undefined) {
        throw new UsageError(`DIGEST-MD5 needs --username (or --device) and a realm: the hash covers both\n\n${HELP}`);
      }
      identity = { username, realm };
    }

    const password = await readPassword();
    const forms = await Promise.all(
      schemesFor(mechanisms).map(async (scheme) => formatStoredSecret(await hashSecret(password, scheme, identity))),
    );
    console.log(`secret: [${forms.map((form) => JSON.stringify(form)).join(', ')}]`);
    return 0;
  });
}
