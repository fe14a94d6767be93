import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from './schema.js';

export type ConfigPath = readonly (string | number)[];

/** How secret problems are worded, so they read like the schema's own issues. */
export interface IssueFormatter {
  /** The dotted path alone: `devices.doorphone.password_file`. */
  name(path: ConfigPath): string;
  /** A full issue: `devices.doorphone.password_file: <message> (line 9)`. */
  issue(path: ConfigPath, message: string): string;
}

export interface GeneratedPassword {
  device: string;
  file: string;
  password: string;
}

export interface SecretResolution {
  issues: string[];
  warnings: string[];
  generatedPasswords: GeneratedPassword[];
}

/** Keys of one secret and its sources: `password`, `password_env`, `password_file`, or the same for `client_secret`. */
type SecretKey = 'password' | 'client_secret';
type SecretHolder = Partial<Record<SecretKey | `${SecretKey}_env` | `${SecretKey}_file`, string>>;

/**
 * Reads every `password_env` and `password_file` into `password` and deletes
 * the source key, so later stages only ever read `password`. Expects
 * `password_file` paths to be absolute already. Mutates `config`.
 */
export async function resolveSecrets(
  config: Config,
  options: { createMissingPasswords: boolean; configFileMode: number; locate: IssueFormatter },
): Promise<SecretResolution> {
  const { locate } = options;
  const result: SecretResolution = { issues: [], warnings: [], generatedPasswords: [] };
  const holders: { path: ConfigPath; holder: SecretHolder; key: SecretKey; generatedFor?: string }[] = [
    ...Object.entries(config.devices).map(([name, device]) => ({
      path: ['devices', name],
      holder: device,
      key: 'password' as const,
      generatedFor: device.generate_password ? name : undefined,
    })),
    ...Object.entries(config.upstreams).flatMap(([name, upstream]) =>
      upstream.type === 'smtp'
        ? [
            { path: ['upstreams', name, 'auth'], holder: upstream.auth, key: 'password' as const },
            ...(upstream.auth.oauth
              ? [{ path: ['upstreams', name, 'auth', 'oauth'], holder: upstream.auth.oauth, key: 'client_secret' as const }]
              : []),
          ]
        : [],
    ),
    ...(config.http ? [{ path: ['http'], holder: config.http, key: 'password' as const }] : []),
  ];
  // Windows reports no group/other bits worth trusting, so the check would only cry wolf there.
  const exposedMode = process.platform !== 'win32' && (options.configFileMode & 0o044) !== 0;
  const mode = (options.configFileMode & 0o777).toString(8).padStart(4, '0');

  // A CRAM-MD5 or DIGEST-MD5 form logs in with its mechanism as well as the password would; scrypt does not.
  for (const [name, device] of Object.entries(config.devices)) {
    const equivalent = exposedMode ? (device.secret ?? []).filter((form) => form.scheme !== 'SCRYPT') : [];
    if (equivalent.length === 0) continue;
    const schemes = equivalent.map((form) => `{${form.scheme}}`).join(' and ');
    result.warnings.push(
      locate.issue(
        ['devices', name, 'secret'],
        `${schemes} form in a config file readable by group or others (mode ${mode}) logs in as this device; chmod 600 the file`,
      ),
    );
  }

  for (const { path, holder, key, generatedFor } of holders) {
    const envKey = `${key}_env` as const;
    const fileKey = `${key}_file` as const;
    if (holder[key] !== undefined && exposedMode) {
      result.warnings.push(
        locate.issue(
          [...path, key],
          `plain ${key.replace('_', ' ')} in a config file readable by group or others (mode ${mode}); chmod 600 the file, or use ${envKey} or ${fileKey}`,
        ),
      );
    }

    if (holder[envKey] !== undefined) {
      const variable = holder[envKey];
      const value = process.env[variable];
      if (value) holder[key] = value;
      else result.issues.push(locate.issue([...path, envKey], `environment variable ${variable} is not set`));
      delete holder[envKey];
      continue;
    }

    if (holder[fileKey] !== undefined) {
      const file = holder[fileKey];
      const at = [...path, fileKey];
      delete holder[fileKey];
      let content: string;
      try {
        content = await readFile(file, 'utf8');
      } catch (err) {
        if (!generatedFor || (err as NodeJS.ErrnoException).code !== 'ENOENT') {
          result.issues.push(locate.issue(at, `cannot read ${file}: ${describeFsError(err)}`));
        } else if (!options.createMissingPasswords) {
          result.warnings.push(`${locate.name(at)}: ${file} does not exist yet; serve will generate it`);
        } else {
          try {
            const password = await createPasswordFile(file);
            holder[key] = password;
            result.generatedPasswords.push({ device: generatedFor, file, password });
          } catch (createErr) {
            result.issues.push(locate.issue(at, `cannot create ${file}: ${describeFsError(createErr)}`));
          }
        }
        continue;
      }
      // Editors and `echo` add a final newline that is not part of the secret.
      const secret = content.replace(/\r?\n$/, '');
      if (secret) holder[key] = secret;
      else result.issues.push(locate.issue(at, `${file} is empty`));
    }
  }
  return result;
}

/** 18 random bytes as base64url: 24 characters, 144 bits, safe to type into a device's web form. */
async function createPasswordFile(file: string): Promise<string> {
  const password = randomBytes(18).toString('base64url');
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  // `wx`: never overwrite a password some device may already be configured with.
  await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
  return password;
}

/** The errno reason of an fs error ("no such file or directory"), without the path the caller already names. */
export function describeFsError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /^[A-Z0-9_]+: (.*?), \w+(?: '.*')?$/.exec(message)?.[1] ?? message;
}
