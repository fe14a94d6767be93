import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI } from '../support/cli.js';

/** Issue 9 item 11 as the operator meets it: `smtp-bridge check-config` on a huge file and on an alias bomb. */

test('check-config refuses a 61 MB config and an alias bomb in one line each, with file and line, in bounded memory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-abuse-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const huge = join(dir, 'huge.yaml');
  // Real bytes, not a sparse file: the kind of file that took 4 GB of heap to parse.
  await writeFile(huge, `devices:\n${'  - [a, b, c, d, e, f, g, h]\n'.repeat(2_200_000)}`, { mode: 0o600 });
  const bomb = join(dir, 'bomb.yaml');
  const level = (name: string, below: string) => `${name}: &${name} [${Array(9).fill(`*${below}`).join(', ')}]`;
  await writeFile(
    bomb,
    [
      'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
      level('b', 'a'),
      level('c', 'b'),
      level('d', 'c'),
      level('e', 'd'),
      level('f', 'e'),
    ].join('\n'),
    {
      mode: 0o600,
    },
  );
  // A heap of 256 MB: reading the file whole would not fit.
  const check = (file: string) =>
    spawnSync(process.execPath, ['--max-old-space-size=256', CLI, 'check-config', '-c', file], { encoding: 'utf8', timeout: 60_000 });

  const hugeRun = check(huge);
  assert.equal(hugeRun.status, 1, hugeRun.stderr);
  assert.equal(hugeRun.stderr, `${huge}: 1 error\nthe file is larger than 1 MiB; a config is a few kilobytes\n`);

  const bombRun = check(bomb);
  assert.equal(bombRun.status, 1, bombRun.stderr);
  assert.match(
    bombRun.stderr,
    new RegExp(`^${bomb}: 1 error\\nc\\[0\\]: aliases expand too far \\(.*\\); write the values out instead \\(line 3\\)\\n$`),
  );
});
