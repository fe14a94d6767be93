import net from 'node:net';

/**
 * A port that was free a moment ago. The kernel picks it (listen on 0), so
 * parallel test files do not collide the way fixed port numbers would; the
 * small race between close and the caller's own bind is accepted.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
