import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Whether this process may mount a tmpfs: a full or read-only spool is made
 * for real that way. It needs CAP_SYS_ADMIN (root on the CI machine); tests
 * without it say so and skip rather than fake the disk.
 */
export function canMount(): boolean {
  const probe = mkdtempSync(join(tmpdir(), 'smtp-bridge-mount-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
