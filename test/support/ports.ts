import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Ports this test process has handed out, so it never hands out one twice. */
const handedOut = new Set<number>();

/**
 * The lowest port the kernel picks by itself, for listen(0) and for the
 * local end of every outgoing connection (Linux's default is 32768).
 */
function kernelRangeStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

const LOWEST = 10_000;
const ABOVE = kernelRangeStart();

/** Whether `port` could be listened on; an error other than "in use" (e.g. no such address) is thrown. */
function tryListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(false) : reject(err),
    );
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A port that was free a moment ago, for a server the test starts later
 * (one that needs its port in its config). It comes from below the range the
 * kernel picks from, so none of the many client connections that test files
 * running side by side make can take it before the server binds; it is
 * picked at random and checked free, so test files do not collide the way
 * fixed port numbers would.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    const port = LOWEST + Math.floor(Math.random() * (ABOVE - LOWEST));
    if (!handedOut.has(port) && (await tryListen(host, port))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on ${host} between ${LOWEST} and ${ABOVE}`);
}
