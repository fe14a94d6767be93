/** How a test's bridge config names one provider played by startUpstream(). */
export interface ProviderEntry {
  name: string;
  port: number;
  caFile: string;
  tls?: 'implicit' | 'starttls';
  password?: string;
  /** Further keys of the upstream, e.g. ["concurrency: 1"]. */
  extra?: string[];
  /** The auth block's YAML in place of PLAIN with `password`, e.g. from oauthAuthYaml(). */
  auth?: string;
}

/** One entry of `upstreams:` in YAML, indented to sit under it. */
export function providerYaml({
  name,
  port,
  caFile,
  tls = 'implicit',
  password = 'upstream-secret',
  extra = [],
  auth,
}: ProviderEntry): string {
  return [
    `  ${name}:`,
    '    host: 127.0.0.1',
    `    port: ${port}`,
    `    tls: ${tls}`,
    `    ca_file: ${caFile}`,
    '    connect_timeout: 2s',
    ...extra.map((line) => `    ${line}`),
    `    auth: ${auth ?? `{ user: relay@example.net, password: ${password}, mechanism: PLAIN }`}`,
    '',
  ].join('\n');
}

/** An XOAUTH2 auth block (flow style) getting its tokens from a test token endpoint; a login endpoint left out is not configured. */
export function oauthAuthYaml(endpoint: { tokenUrl: string; deviceUrl?: string; authorizeUrl?: string }, oauth: string[] = []): string {
  const keys = [
    `token_url: "${endpoint.tokenUrl}"`,
    ...(endpoint.deviceUrl ? [`device_url: "${endpoint.deviceUrl}"`] : []),
    ...(endpoint.authorizeUrl ? [`authorize_url: "${endpoint.authorizeUrl}"`] : []),
    'client_id: test-client',
    ...oauth,
  ];
  return `{ user: relay@example.net, mechanism: XOAUTH2, oauth: { ${keys.join(', ')} } }`;
}
