import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Keeps a big message from swelling the process. Every byte of a message
 * passes through several short-lived buffers (TLS, smtp-server's stream, the
 * spool, nodemailer), and V8 collects them only once about 32 MB of young
 * buffers have piled up: a 25 MB message would grow the process by that much
 * although no more than a few chunks are ever alive. Asking for a young-
 * generation collection (a scavenge, about a millisecond) after every few MB
 * streamed keeps that pile small; small messages never reach the threshold.
 */
const COLLECT_EVERY = 4 * 1024 * 1024;

let collect: ((options: { type: 'minor' | 'major' }) => void) | undefined;
let streamed = 0;

/**
 * Turns the collections on. It changes a process-wide V8 flag, so the bridge
 * asks for it once at start instead of every importer getting it as a side effect.
 */
export function collectStreamedMemory(): void {
  if (collect) return;
  setFlagsFromString('--expose-gc');
  collect = runInNewContext('gc') as typeof collect;
}

export function noteStreamed(bytes: number): void {
  if (!collect) return;
  streamed += bytes;
  if (streamed < COLLECT_EVERY) return;
  streamed = 0;
  collect({ type: 'minor' });
}
