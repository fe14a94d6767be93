import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isAlias, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { describeFsError, resolveSecrets, type ConfigPath, type GeneratedPassword, type IssueFormatter } from './secrets.js';

export type { GeneratedPassword } from './secrets.js';

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the config file. */
  file: string;
  warnings: string[];
  /** Device passwords created during this load (only with `createMissingPasswords`). */
  generatedPasswords: GeneratedPassword[];
}

export interface LoadOptions {
  /** Create missing `password_file`s of devices with `generate_password: true` (serve does; check-config does not). */
  createMissingPasswords?: boolean;
  /** Leave secrets unread: tools that only touch the spool must not need the provider's password. */
  skipSecrets?: boolean;
}

/** Everything wrong with a config file, each issue on its own line as `<path>: <message> (line N)`. */
export class ConfigError extends Error {
  readonly issues: string[];

  constructor(file: string, issues: string[]) {
    super(`${file}: ${issues.length} ${issues.length === 1 ? 'error' : 'errors'}\n${issues.join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Far beyond any real config (a thousand devices take a few hundred KB), and small enough that parsing it costs little memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Alias uses times what each expands to, as yaml counts it: a config needs a handful, a "billion laughs" millions. */
const MAX_ALIAS_COUNT = 1000;

/** The file's text, or undefined when it is over MAX_CONFIG_BYTES; read with a bound, so a special file cannot fill memory either. */
async function readBounded(file: string): Promise<{ source?: string; mode: number }> {
  const handle = await open(file, 'r');
  try {
    const { mode } = await handle.stat();
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (let read = -1; read !== 0 && length < buffer.length; length += read) {
      ({ bytesRead: read } = await handle.read(buffer, length, buffer.length - length));
    }
    return { source: length > MAX_CONFIG_BYTES ? undefined : buffer.toString('utf8', 0, length), mode };
  } finally {
    await handle.close();
  }
}

/**
 * An alias that expands too far, named by key and line. yaml stops with no
 * position, so the line is that of the first alias to a node holding aliases
 * itself: the nesting that makes an alias bomb.
 */
function aliasIssue(doc: Document, lineCounter: LineCounter, reason: string): string {
  let found: { path: ConfigPath; offset: number } | undefined;
  visit(doc, {
    Alias(_key, node, ancestors) {
      const target = node.resolve(doc);
      let nested = false;
      if (target) visit(target, { Alias: () => ((nested = true), visit.BREAK) });
      if (!nested && found) return;
      found = { path: pathOf(ancestors, node), offset: node.range?.[0] ?? 0 };
      if (nested) return visit.BREAK;
    },
  });
  const message = `aliases expand too far (${reason.toLowerCase()}); write the values out instead`;
  return withLine(found ? formatPath(found.path) : '', message, found && lineCounter.linePos(found.offset).line);
}

/** The config path of `node`, which `visit` reached through `ancestors`: the keys of the pairs and the indexes in the lists on the way. */
function pathOf(ancestors: readonly unknown[], node: unknown): ConfigPath {
  const chain = [...ancestors, node];
  return ancestors.flatMap<string | number>((ancestor, index) => {
    if (isSeq(ancestor)) return [ancestor.items.indexOf(chain[index + 1])];
    if (isPair(ancestor) && isScalar(ancestor.key)) return [String(ancestor.key.value)];
    return [];
  });
}

export async function loadConfig(file: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const absolute = resolve(file);
  let source: string | undefined;
  let mode: number;
  try {
    ({ source, mode } = await readBounded(absolute));
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${describeFsError(err)}`]);
  }
  if (source === undefined) {
    throw new ConfigError(file, [`the file is larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB; a config is a few kilobytes`]);
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false });
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((error) => `syntax error: ${error.message} (line ${lineAt(error.pos[0])})`),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    throw new ConfigError(file, [aliasIssue(doc, lineCounter, err.message)]);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError(file, ['the file is empty: it needs at least listen, upstreams and devices']);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [
      `the top level must be a map of settings, got ${describeValue(raw)} (line ${lineAt(doc.contents?.range[0] ?? 0)})`,
    ]);
  }

  const warnings = doc.warnings.map((warning) => withLine('yaml', warning.message, lineAt(warning.pos[0])));

  const parsed = configSchema.safeParse(raw, { error: friendlyMessage });
  if (!parsed.success) {
    throw new ConfigError(file, sortByLine(parsed.error.issues.flatMap((issue) => describeIssue(issue, raw, doc, lineCounter))));
  }

  const config = parsed.data;
  resolvePaths(config, dirname(absolute));
  const locate: IssueFormatter = {
    name: formatPath,
    issue: (path, message) => withLine(formatPath(path), message, lineOf(doc, lineCounter, path)),
  };
  if (options.skipSecrets) return { config, file: absolute, warnings, generatedPasswords: [] };
  const secrets = await resolveSecrets(config, {
    createMissingPasswords: options.createMissingPasswords ?? false,
    configFileMode: mode,
    locate,
  });
  if (secrets.issues.length > 0) throw new ConfigError(file, sortByLine(secrets.issues));

  return { config, file: absolute, warnings: [...warnings, ...secrets.warnings], generatedPasswords: secrets.generatedPasswords };
}

/** Relative paths mean "next to the config file", so every command acts on the same files from any working directory. */
function resolvePaths(config: Config, base: string): void {
  const at = (path: string) => resolve(base, path);
  config.tls.cert_file = at(config.tls.cert_file);
  config.tls.key_file = at(config.tls.key_file);
  config.spool.dir = at(config.spool.dir);
  for (const upstream of Object.values(config.upstreams)) {
    if (upstream.type === 'directory') {
      upstream.path = at(upstream.path);
      continue;
    }
    if (upstream.ca_file) upstream.ca_file = at(upstream.ca_file);
    if (upstream.auth.password_file) upstream.auth.password_file = at(upstream.auth.password_file);
    const { oauth } = upstream.auth;
    if (oauth?.client_secret_file) oauth.client_secret_file = at(oauth.client_secret_file);
    if (oauth?.token_file) oauth.token_file = at(oauth.token_file);
  }
  for (const device of Object.values(config.devices)) {
    if (device.password_file) device.password_file = at(device.password_file);
  }
  if (config.http?.password_file) config.http.password_file = at(config.http.password_file);
}

function describeIssue(issue: z.core.$ZodIssue, raw: object, doc: Document, lineCounter: LineCounter): string[] {
  const path = issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment));
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const keyPath = [...path, key];
      return withLine(formatPath(keyPath), 'unknown key', lineOf(doc, lineCounter, keyPath));
    });
  }
  const parentPath = path.slice(0, -1);
  if (issue.code !== 'custom' && path.length > 0 && isMissing(raw, path)) {
    return [withLine(formatPath(path), 'required', lineOf(doc, lineCounter, parentPath))];
  }
  return [withLine(formatPath(path), issue.message, lineOf(doc, lineCounter, path))];
}

/** True when the key at the end of `path` is absent from a map that does exist. */
function isMissing(raw: object, path: ConfigPath): boolean {
  let parent: unknown = raw;
  for (const segment of path.slice(0, -1)) {
    if (parent === null || typeof parent !== 'object') return false;
    parent = (parent as Record<string | number, unknown>)[segment];
  }
  return parent !== null && typeof parent === 'object' && !Array.isArray(parent) && !Object.hasOwn(parent, path[path.length - 1]);
}

/**
 * The line of the deepest node along `path` that exists in the document: for a
 * map entry the line of its key, for a list item the item's own line.
 */
function lineOf(doc: Document, lineCounter: LineCounter, path: ConfigPath): number | undefined {
  let node: unknown = doc.contents;
  let offset = isNode(node) ? node.range?.[0] : undefined;
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((item) => (isScalar(item.key) ? String(item.key.value) : String(item.key)) === String(segment));
      if (!pair) break;
      if (isNode(pair.key) && pair.key.range) offset = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (!isNode(item) || !item.range) break;
      offset = item.range[0];
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : lineCounter.linePos(offset).line;
}

function withLine(path: string, message: string, line: number | undefined): string {
  const prefix = path ? `${path}: ` : '';
  return line === undefined ? `${prefix}${message}` : `${prefix}${message} (line ${line})`;
}

const lineNumber = (issue: string) => Number(/\(line (\d+)\)$/.exec(issue)?.[1] ?? 0);

function sortByLine(issues: string[]): string[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => lineNumber(a.issue) - lineNumber(b.issue) || a.index - b.index)
    .map(({ issue }) => issue);
}

/** `devices.doorphone.mechanisms[1]`; names that would read ambiguously are quoted: `devices["printer.lan"]`. */
function formatPath(path: ConfigPath): string {
  return path.reduce<string>((text, segment) => {
    if (typeof segment === 'number') return `${text}[${segment}]`;
    if (!/^[\w-]+$/.test(segment)) return `${text}[${JSON.stringify(segment)}]`;
    return text ? `${text}.${segment}` : segment;
  }, '');
}

function describeValue(value: unknown): string {
  if (value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return JSON.stringify(value);
}

const EXPECTED: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a map',
  record: 'a map',
  array: 'a list',
};

/**
 * Wording for the checks the schema leaves to zod's defaults, so every message
 * reads the same way; the schema's own messages take precedence over these.
 */
const friendlyMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
    case 'too_small':
      if (issue.origin !== 'number') return undefined;
      return `must be ${issue.inclusive ? 'at least' : 'greater than'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin !== 'number') return undefined;
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}`;
    default:
      return undefined;
  }
};
