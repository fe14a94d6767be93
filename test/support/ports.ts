import net from 'node:net';

/** Ports this test process has handed out: the kernel may offer a just-closed port again. */
const handedOut = new Set<number>();

/**
 * A port that was free a moment ago and has not been handed out before in
 * this process. The kernel picks it (listen on 0), so test files do not
 * collide the way fixed port numbers would; the small race between close and
 * the caller's own bind is accepted.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen({ host, port: 0, exclusive: true }, () => {
        const { port: bound } = server.address() as net.AddressInfo;
        server.close((err) => (err ? reject(err) : resolve(bound)));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}
