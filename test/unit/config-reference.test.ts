/**
 * docs/configuration.md must not drift from src/config/schema.ts.
 *
 * The schema is walked for every key a config file can hold (as a path:
 * `delivery.sync_wait`, `listen[].port`, `devices.NAME.limits.messages`) and
 * every default it fills in. The reference is read by one convention:
 *
 * - a heading whose first backticked word is a key path (`## \`devices.NAME\``)
 *   opens the section for the keys under it; a heading without one
 *   (`## Top level`) opens the top level;
 * - in a table whose header starts with `key`, every backticked word of a
 *   row's first cell is a key, relative to the section (`auth.user` under
 *   `upstreams.NAME` is `upstreams.NAME.auth.user`);
 * - the table's `default` column states the default: some backticked word in
 *   it, read as YAML and parsed by that key's schema, gives the schema's
 *   default (`15s` for 15000 ms, `25MB` for 26214400 bytes). A table whose
 *   defaults are those of its own keys may say `see below` instead.
 *
 * Every schema key must be documented, every default stated, and every
 * documented key must exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { REPO_ROOT } from '../support/cli.js';

const REFERENCE = path.join(REPO_ROOT, 'docs/configuration.md');
const REFERENCE_NAME = 'docs/configuration.md';

/** The parts of a zod 4 schema the walk reads; zod's own types are too narrow to switch on. */
interface SchemaNode {
  _zod: { def: SchemaDef };
  safeParse(value: unknown): { success: boolean; data?: unknown };
}

interface SchemaDef {
  type: string;
  shape?: Record<string, SchemaNode>;
  element?: SchemaNode;
  valueType?: SchemaNode;
  options?: SchemaNode[];
  innerType?: SchemaNode;
  defaultValue?: unknown;
  in?: SchemaNode;
  out?: SchemaNode;
  left?: SchemaNode;
  right?: SchemaNode;
  getter?: () => SchemaNode;
}

interface SchemaDefault {
  value: unknown;
  /** The schema under the default: what a value written in the config goes through. */
  schema: SchemaNode;
}

interface SchemaKeys {
  paths: Set<string>;
  defaults: Map<string, SchemaDefault>;
}

const join = (prefix: string, key: string): string => (prefix ? `${prefix}.${key}` : key);

/** Every key path and default under `node`; records show their keys as NAME, arrays their items as []. */
function walkSchema(node: SchemaNode, path = '', found: SchemaKeys = { paths: new Set(), defaults: new Map() }): SchemaKeys {
  const def = node._zod.def;
  switch (def.type) {
    case 'object':
      for (const [key, child] of Object.entries(def.shape ?? {})) {
        found.paths.add(join(path, key));
        walkSchema(child, join(path, key), found);
      }
      break;
    case 'record':
      walkSchema(def.valueType!, join(path, 'NAME'), found);
      break;
    case 'array':
      walkSchema(def.element!, `${path}[]`, found);
      break;
    case 'union':
      // Plain and discriminated unions: a key of any member is a key.
      for (const option of def.options ?? []) walkSchema(option, path, found);
      break;
    case 'intersection':
      walkSchema(def.left!, path, found);
      walkSchema(def.right!, path, found);
      break;
    case 'pipe':
      // x.transform(f) is pipe(x, transform); z.preprocess(f, x) is pipe(transform, x). Walk the side that is a schema.
      walkSchema(def.in!._zod.def.type === 'transform' ? def.out! : def.in!, path, found);
      break;
    case 'default':
      if (path) found.defaults.set(path, { value: def.defaultValue, schema: def.innerType! });
      walkSchema(def.innerType!, path, found);
      break;
    case 'optional':
    case 'nullable':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
    case 'prefault':
      walkSchema(def.innerType!, path, found);
      break;
    case 'lazy':
      walkSchema(def.getter!(), path, found);
      break;
    default:
      // A value, not a place for keys: string, number, enum, literal, transform…
      break;
  }
  return found;
}

interface DocumentedKey {
  path: string;
  /** The row's default cell, or undefined when its table has no default column. */
  defaultCell?: string;
  line: number;
}

const backticked = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((match) => match[1]);

/** Splits a Markdown table row into its cells (no escaped pipes are used in the reference). */
const cellsOf = (row: string): string[] =>
  row
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((cell) => cell.trim());

/** Every key row of the reference, by the convention above. */
function readReference(text: string): DocumentedKey[] {
  const keys: DocumentedKey[] = [];
  let section = '';
  let header: string[] | undefined;
  let inFence = false;
  text.split('\n').forEach((line, index) => {
    if (/^\s*```/.test(line)) inFence = !inFence;
    if (inFence) return;
    const heading = /^#{2,6}\s+(.*)$/.exec(line);
    if (heading) {
      section = backticked(heading[1])[0] ?? '';
      header = undefined;
      return;
    }
    if (!line.trim().startsWith('|')) {
      header = undefined;
      return;
    }
    const cells = cellsOf(line);
    if (!header) {
      header = cells.map((cell) => cell.toLowerCase());
      return;
    }
    if (cells.every((cell) => /^:?-+:?$/.test(cell)) || header[0] !== 'key') return;
    const defaultColumn = header.indexOf('default');
    for (const key of backticked(cells[0])) {
      keys.push({ path: join(section, key), defaultCell: defaultColumn >= 0 ? cells[defaultColumn] : undefined, line: index + 1 });
    }
  });
  return keys;
}

/** Whether a default cell states the schema's default. */
function statesDefault(cell: string, expected: SchemaDefault): boolean {
  for (const word of backticked(cell)) {
    let written: unknown;
    try {
      written = parseYaml(word);
    } catch {
      continue;
    }
    const parsed = expected.schema.safeParse(written);
    if (parsed.success && isDeepStrictEqual(parsed.data, expected.value)) return true;
  }
  // An object whose default is what its own keys default to: those are documented, and checked, row by row.
  if (/\bsee below\b/i.test(cell) && typeof expected.value === 'object' && expected.value !== null && !Array.isArray(expected.value)) {
    const fromKeys = expected.schema.safeParse({});
    return fromKeys.success && isDeepStrictEqual(fromKeys.data, expected.value);
  }
  return false;
}

const show = (value: unknown): string => JSON.stringify(value);

/** Where a missing key's row goes: the section named after its parent, and the key relative to it. */
function whereToDocument(path: string): string {
  const parent = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
  const key = path.slice(parent.length ? parent.length + 1 : 0);
  if (!parent) return `a row \`${key}\` to the "Top level" table`;
  const grandparent = parent.includes('.') ? parent.slice(0, parent.lastIndexOf('.')) : '';
  const upOne = grandparent ? `the \`${grandparent}\` table` : 'the "Top level" table';
  return `a row \`${key}\` to the table under the heading \`${parent}\` (or a row \`${path.slice(grandparent.length ? grandparent.length + 1 : 0)}\` to ${upOne})`;
}

const schema = walkSchema(configSchema as unknown as SchemaNode);
const documented = readReference(readFileSync(REFERENCE, 'utf8'));
const documentedPaths = new Set(documented.map((key) => key.path));

test('the schema walk sees the whole config (a zod upgrade must not make the reference test vacuous)', () => {
  for (const path of [
    'hostname',
    'listen[].port',
    'tls.min_version',
    'spool.dir',
    'delivery.sync_wait',
    'upstreams.NAME.auth.user',
    'upstreams.NAME.path',
    'devices.NAME.limits.messages',
    'lockout.window',
    'alert.webhook',
  ]) {
    assert.ok(schema.paths.has(path), `the schema walk did not find ${path}; it found: ${[...schema.paths].join(', ')}`);
  }
  for (const path of ['hostname', 'max_message_size', 'delivery.max_age', 'devices.NAME.mechanisms', 'lockout', 'tls']) {
    assert.ok(schema.defaults.has(path), `the schema walk did not find the default of ${path}`);
  }
});

test(`every config key in src/config/schema.ts is documented in ${REFERENCE_NAME}`, () => {
  const missing = [...schema.paths].filter((path) => !documentedPaths.has(path));
  assert.deepEqual(
    missing,
    [],
    `${REFERENCE_NAME} does not document these keys of src/config/schema.ts:\n${missing.map((path) => `  ${path}: add ${whereToDocument(path)}`).join('\n')}`,
  );
});

test(`every default in src/config/schema.ts is stated in ${REFERENCE_NAME}`, () => {
  const problems: string[] = [];
  for (const [path, expected] of schema.defaults) {
    const rows = documented.filter((key) => key.path === path);
    if (rows.length === 0) continue; // reported as a missing key
    if (rows.some((row) => row.defaultCell !== undefined && statesDefault(row.defaultCell, expected))) continue;
    const cells = rows
      .map((row) => `line ${row.line}: ${row.defaultCell === undefined ? 'no default column' : show(row.defaultCell)}`)
      .join('; ');
    problems.push(
      `  ${path}: schema default ${show(expected.value)}, but the default cell (${cells}) has no backticked value that parses to it`,
    );
  }
  assert.deepEqual(problems, [], `${REFERENCE_NAME} misstates defaults of src/config/schema.ts:\n${problems.join('\n')}`);
});

test(`every key documented in ${REFERENCE_NAME} exists in src/config/schema.ts`, () => {
  const extra = documented.filter((key) => !schema.paths.has(key.path));
  assert.deepEqual(
    extra.map((key) => `  ${key.path} (line ${key.line})`),
    [],
    `${REFERENCE_NAME} documents keys that src/config/schema.ts does not have (remove the row, or fix its heading or name):\n${extra.map((key) => `  ${key.path} (line ${key.line})`).join('\n')}`,
  );
});
