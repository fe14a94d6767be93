import { parseArgs, type ParseArgsConfig } from 'node:util';

export const DEFAULT_CONFIG = 'config/smtp-bridge.yaml';

/** `-c FILE`, which every command that reads the config takes. */
export const CONFIG_OPTION = { config: { type: 'string', short: 'c', default: DEFAULT_CONFIG } } as const;

/** `--json`, for commands that can print machine-readable output. */
export const JSON_OPTION = { json: { type: 'boolean', default: false } } as const;

/** Plain `--NAME VALUE` options, as parseArgs declares them. */
export function stringOptions<Name extends string>(...names: Name[]): Record<Name, { type: 'string' }> {
  return Object.fromEntries(names.map((name) => [name, { type: 'string' }])) as Record<Name, { type: 'string' }>;
}

export class UsageError extends Error {}

/** `--help` was given: the command prints its help and exits 0 without doing anything else. */
class HelpRequested extends Error {}

/**
 * Parses a command's options with node's own parser; unknown options and
 * stray positionals become a UsageError (exit 2) carrying the command's help,
 * and `-h`/`--help` ends the command with its help (exit 0).
 */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  help: string,
  allowPositionals = false,
) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${help}`);
  }
  if ((parsed.values as { help?: boolean }).help) throw new HelpRequested(help);
  return parsed;
}

/** Runs a command body, turning UsageError into exit 2 and any other error into one line and exit 1. */
export async function runCommand(body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(err.message);
      return 0;
    }
    if (err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    console.error(`smtp-bridge: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
