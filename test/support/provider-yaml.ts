/** How a test's bridge config names one provider played by startUpstream(). */
export interface ProviderEntry {
  name: string;
  port: number;
  caFile: string;
  tls?: 'implicit' | 'starttls';
  password?: string;
  /** Further keys of the upstream, e.g. ["concurrency: 1"]. */
  extra?: string[];
}

/** One entry of `upstreams:` in YAML, indented to sit under it. */
export function providerYaml({ name, port, caFile, tls = 'implicit', password = 'upstream-secret', extra = [] }: ProviderEntry): string {
  return [
    `  ${name}:`,
    '    host: 127.0.0.1',
    `    port: ${port}`,
    `    tls: ${tls}`,
    `    ca_file: ${caFile}`,
    '    connect_timeout: 2s',
    ...extra.map((line) => `    ${line}`),
    `    auth: { user: relay@example.net, password: ${password}, mechanism: PLAIN }`,
    '',
  ].join('\n');
}
