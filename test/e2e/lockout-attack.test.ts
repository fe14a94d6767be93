import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { formatStoredSecret } from '../../src/auth/stored-secret.js';
import { hashSecret } from '../../src/auth/hash-secret.js';
import { startTestBridge, type LogLine, type TestBridge } from '../support/bridge.js';
import { LineClient } from '../support/line-client.js';

/**
 * Issue 9, items 1-5: the brute-force lockout as an attacker meets it, over
 * implicit TLS with AUTH PLAIN from loopback addresses (127.0.0.0/8 and ::1).
 */

const plainResponse = (username: string, password: string) => Buffer.from(`\0${username}\0${password}`).toString('base64');

/** An implicit-TLS session past EHLO that sends AUTH PLAIN, reconnecting whenever the bridge closed it. */
class AuthSession {
  private client?: LineClient;

  constructor(
    private readonly port: number,
    private readonly localAddress = '127.0.0.1',
    private readonly host = '127.0.0.1',
  ) {}

  async open(): Promise<void> {
    if (this.client && !this.client.isClosed) return;
    this.client = await LineClient.connect({ port: this.port, host: this.host, tls: true, localAddress: this.localAddress });
    assert.equal((await this.client.reply(10_000))?.code, 220);
    assert.equal((await this.client.command('EHLO attacker.test', 10_000))?.code, 250);
  }

  /**
   * The reply code to AUTH PLAIN. A session the bridge closed (a limit on
   * errors per connection, say) is opened again and the AUTH sent once more,
   * as a patient attacker would.
   */
  async auth(username: string, password: string): Promise<number | undefined> {
    for (let tries = 0; ; tries++) {
      await this.open();
      const reply = await this.client!.command(`AUTH PLAIN ${plainResponse(username, password)}`, 30_000);
      if (reply && reply.code !== 421) return reply.code;
      this.client!.close();
      if (tries > 0) return reply?.code;
    }
  }

  close(): void {
    this.client?.close();
  }
}

async function authOnce(port: number, username: string, password: string, localAddress?: string, host?: string) {
  const session = new AuthSession(port, localAddress, host);
  try {
    return await session.auth(username, password);
  } finally {
    session.close();
  }
}

/** A device entry under `devices:`; its password is NAME-secret, in the config or (`scrypt`) only as a stored {SCRYPT} form. */
async function device(name: string, extra = '', scrypt = false): Promise<string> {
  const credential = scrypt
    ? `secret: "${formatStoredSecret(await hashSecret(`${name}-secret`, 'SCRYPT'))}"\nmechanisms: [PLAIN, LOGIN]`
    : `password: ${name}-secret`;
  return `  ${name}:
    senders: ["${name}@example.net"]
    upstream: capture
${[credential, extra].join('\n').replace(/^/gm, '    ')}
`;
}

/** A bridge with this `lockout:` and these devices (YAML under `devices:`), all delivering to a capture directory. */
function lockoutBridge(lockout: string, devices: string, address?: string): Promise<TestBridge> {
  return startTestBridge({
    address,
    yaml: `lockout: ${lockout}
upstreams:
  capture: { type: directory, path: captured }
devices:
${devices}`,
  });
}

const failures = (logs: LogLine[], filter: (line: LogLine) => boolean) =>
  logs.filter((line) => line.msg === 'authentication failed' && filter(line));

describe('a full lockout table', () => {
  let bridge: TestBridge;
  before(async () => {
    bridge = await lockoutBridge('{ ip_failures: 0, username_failures: 3 }', await device('victim'));
  });
  after(() => bridge?.stop());

  test('still counts: after 10,001 sprayed usernames, guessing a real one locks it out', async () => {
    const sessions = Array.from({ length: 4 }, () => new AuthSession(bridge.ports.implicit!));
    try {
      await Promise.all(
        sessions.map(async (session, s) => {
          for (let i = s; i <= 10_000; i += sessions.length) assert.equal(await session.auth(`sprayed-${i}`, 'x'), 535);
        }),
      );
      for (let i = 0; i < 3; i++) assert.equal(await sessions[0].auth('victim', 'guess'), 535);
      assert.equal(await sessions[0].auth('victim', 'victim-secret'), 454, 'the guessed username is locked out');
    } finally {
      sessions.forEach((session) => session.close());
    }
    assert.ok(bridge.logs.some((line) => line.msg === 'username locked out' && line.key === 'victim'));
  });

  test('a lockout switched off per client is a warning at start', () => {
    const warned = bridge.logs.filter((line) => line.msg === 'brute-force lockout weakened, as configured');
    assert.deepEqual(
      warned.map((line) => [line.level, line.ip_failures, line.username_failures, line.ipv6_prefix]),
      [['warn', 0, 3, 64]],
    );
  });
});

describe('unknown usernames', () => {
  let bridge: TestBridge;
  before(async () => {
    bridge = await lockoutBridge('{ ip_failures: 0, username_failures: 0 }', await device('hashed', '', true));
  });
  after(() => bridge?.stop());

  test('take as long to refuse as a known username with {SCRYPT} (within a factor of 2)', async () => {
    const session = new AuthSession(bridge.ports.implicit!);
    const time = async (username: string) => {
      const start = process.hrtime.bigint();
      assert.equal(await session.auth(username, 'wrong'), 535);
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    try {
      await time('hashed');
      const known: number[] = [];
      const unknown: number[] = [];
      // Interleaved, so a busy machine slows both alike; medians, so one stall does not decide.
      for (let i = 0; i < 9; i++) {
        known.push(await time('hashed'));
        unknown.push(await time(`nobody-${i}`));
      }
      const median = (values: number[]) => values.sort((a, b) => a - b)[4];
      const [k, u] = [median(known), median(unknown)];
      assert.ok(u > k / 2 && u < k * 2, `known ${k.toFixed(1)} ms, unknown ${u.toFixed(1)} ms`);
    } finally {
      session.close();
    }
  });
});

describe('the lockout under attack', () => {
  let bridge: TestBridge;
  before(async () => {
    bridge = await lockoutBridge(
      '{ ip_failures: 5, username_failures: 8, window: 10m, duration: 1m }',
      (await Promise.all([device('homebound', 'networks: [127.0.0.1/32]'), device('someone'), device('hashed', '', true)])).join(''),
      '::',
    );
  });
  after(() => bridge?.stop());

  test('a lockout with both limits on and IPv6 per /64 logs no warning', () => {
    assert.ok(!bridge.logs.some((line) => line.msg === 'brute-force lockout weakened, as configured'));
  });

  test('100 parallel AUTHs from one address get no more password checks than ip_failures', async () => {
    const sessions = Array.from({ length: 100 }, () => new AuthSession(bridge.ports.implicit!, '127.0.0.31'));
    try {
      await Promise.all(sessions.map((session) => session.open()));
      const codes = await Promise.all(sessions.map((session) => session.auth('hashed', 'guess')));
      assert.equal(codes.filter((code) => code === 535).length, 5);
      assert.equal(codes.filter((code) => code === 454).length, 95);
    } finally {
      sessions.forEach((session) => session.close());
    }
    const checked = failures(bridge.logs, (line) => String(line.client_ip).endsWith('127.0.0.31') && line.reason === 'bad-password');
    assert.equal(checked.length, 5, 'five password checks, not one per session');
  });

  test('IPv4 clients are counted per address', async () => {
    for (let i = 0; i < 5; i++) assert.equal(await authOnce(bridge.ports.implicit!, `nobody-v4-${i}`, 'x', '127.0.0.41'), 535);
    assert.equal(await authOnce(bridge.ports.implicit!, 'someone', 'someone-secret', '127.0.0.41'), 454);
    assert.equal(await authOnce(bridge.ports.implicit!, 'someone', 'someone-secret', '127.0.0.42'), 235, 'the neighbour is not locked');
    const lock = bridge.logs.find((line) => line.msg === 'client locked out' && String(line.client_ip).endsWith('127.0.0.41'));
    assert.equal(lock?.key, '127.0.0.41');
  });

  test('IPv6 clients are counted per /64: the lock names the network', async () => {
    for (let i = 0; i < 5; i++) assert.equal(await authOnce(bridge.ports.implicit!, `nobody-v6-${i}`, 'x', '::1', '::1'), 535);
    assert.equal(await authOnce(bridge.ports.implicit!, 'someone', 'someone-secret', '::1', '::1'), 454);
    const lock = bridge.logs.find((line) => line.msg === 'client locked out' && line.client_ip === '::1');
    assert.equal(lock?.key, '::/64');
  });

  test('guesses from outside a device’s networks do not lock the device out at home', async () => {
    for (const from of ['127.0.0.51', '127.0.0.52', '127.0.0.53']) {
      for (let i = 0; i < 3; i++) assert.equal(await authOnce(bridge.ports.implicit!, 'homebound', 'guess', from), 535);
    }
    assert.equal(await authOnce(bridge.ports.implicit!, 'homebound', 'homebound-secret', '127.0.0.1'), 235);
    const outside = failures(bridge.logs, (line) => line.sasl_username === 'homebound' && line.reason === 'bad-password');
    assert.equal(outside.length, 9);
    assert.ok(
      outside.every((line) => line.outside_networks === true),
      'each outside failure is logged as such',
    );
    assert.ok(!bridge.logs.some((line) => line.msg === 'username locked out' && line.key === 'homebound'));
  });
});
