import { loadConfig } from '../config/load.js';
import { kickServer } from '../spool/signal.js';
import { SpoolStore, type SpooledMessage } from '../spool/store.js';
import { smtpReplyHint } from '../delivery/provider-hints.js';
import { CONFIG_OPTION, JSON_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand, UsageError } from './args.js';
import { printTable } from './table.js';

const HELP = `usage: smtp-bridge queue <action> [ID] [-c FILE] [--json]

Looks at and acts on the spool of a bridge, also while it runs.

actions:
  list          messages waiting for delivery
  failed        messages given up on (provider refused them, or they expired)
  show ID       one message's envelope and delivery state (queued or failed)
  retry [ID]    try one queued message (or all) now; a failed message goes back to the queue
  delete ID     remove a message for good (refused while it is being delivered)

options:
  -c, --config FILE   config file (default ${DEFAULT_CONFIG})
      --json          machine-readable output
  -h, --help          show this help`;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseCommandArgs(argv, { ...CONFIG_OPTION, ...JSON_OPTION }, HELP, true);
    const [action, id, ...extra] = positionals;
    const needsId = action === 'show' || action === 'delete';
    const takesId = needsId || action === 'retry';
    if (!action || !(action in ACTIONS) || (needsId && !id) || (!takesId && id) || extra.length > 0) {
      throw new UsageError(`${action && !(action in ACTIONS) ? `unknown action "${action}"\n\n` : ''}${HELP}`);
    }
    const { config } = await loadConfig(values.config!, { skipSecrets: true });
    const spool = new SpoolStore(config.spool.dir);
    return ACTIONS[action as keyof typeof ACTIONS]({ spool, id, json: values.json! });
  });
}

interface ActionContext {
  spool: SpoolStore;
  id?: string;
  json: boolean;
}

const ACTIONS = {
  list: ({ spool, json }: ActionContext) =>
    listArea(spool, 'queue', json, {
      header: ['ID', 'AGE', 'DEVICE', 'FROM', 'TO (PENDING)', 'TRIES', 'NEXT ATTEMPT', 'LAST ERROR'],
      row: (m) => [
        m.id,
        age(m),
        m.conn.device,
        m.envelope.sender || '<>',
        pendingOf(m).join(','),
        String(m.state.attempts),
        m.state.attempts ? m.state.nextAttemptAt : 'now',
        withHint(m.state.lastError),
      ],
      none: 'queue is empty',
      count: 'queued',
    }),

  failed: ({ spool, json }: ActionContext) =>
    listArea(spool, 'failed', json, {
      header: ['ID', 'FAILED AT', 'DEVICE', 'FROM', 'TO', 'REASON'],
      row: (m) => [
        m.id,
        m.state.failedAt ?? '',
        m.conn.device,
        m.envelope.sender || '<>',
        m.envelope.to.join(','),
        withHint(m.state.reason),
      ],
      none: 'no failed messages',
      count: 'failed',
    }),

  async show({ spool, id, json }: ActionContext) {
    const [area, message] = await find(spool, id!);
    if (json) return print({ area, ...message });
    const { conn, envelope, state } = message;
    const lines: [string, string | number | undefined][] = [
      ['id', message.id],
      ['area', area],
      ['device', conn.device],
      ['client ip', conn.clientIp],
      ['tls', conn.tls ?? 'none'],
      ['sasl', conn.saslMethod ? `${conn.saslMethod} as ${conn.saslUsername}` : 'none'],
      ['received', envelope.receivedAt],
      ['from', envelope.originalFrom || '<>'],
      ['sent as', envelope.sender === envelope.originalFrom ? undefined : envelope.sender || '<>'],
      ['to', envelope.to.join(', ')],
      ['message-id', message.messageId],
      ['size', message.size],
      ['upstream', envelope.upstream],
      ['attempts', state.attempts],
      ['next attempt', area === 'queue' ? state.nextAttemptAt : undefined],
      ['last error', state.lastError],
      ['hint', smtpReplyHint(state.lastError ?? state.reason ?? '')],
      ['delivered to', state.delivered.join(', ') || undefined],
      ['refused', state.refused.map((r) => `${r.address} (${r.response})`).join('; ') || undefined],
      ['failed at', state.failedAt],
      ['reason', state.reason],
      ['file', spool.path(area, message.id, 'msg')],
    ];
    for (const [label, value] of lines) if (value !== undefined) console.log(`${`${label}:`.padEnd(14)}${value}`);
    return 0;
  },

  async retry({ spool, id, json }: ActionContext) {
    const now = new Date().toISOString();
    const targets = id ? [await find(spool, id)] : (await spool.list('queue')).map((m): [Area, SpooledMessage] => ['queue', m]);
    for (const [area, message] of targets) {
      message.state.nextAttemptAt = now;
      if (area === 'failed') {
        // Everyone not yet delivered gets another chance, including recipients the provider had refused.
        message.state.refused = [];
        delete message.state.failedAt;
        delete message.state.reason;
        await spool.move(message, 'failed', 'queue');
      } else {
        await spool.saveState(message);
      }
    }
    await kickServer(spool.dir);
    if (json) return print({ retried: targets.map(([, m]) => m.id) });
    return say(`${targets.length} message${targets.length === 1 ? '' : 's'} due now`);
  },

  async delete({ spool, id, json }: ActionContext) {
    const [area, message] = await find(spool, id!);
    if (area === 'queue' && spool.isLocked(message.id)) {
      throw new Error(`message ${message.id} is being delivered right now; try again in a moment`);
    }
    await spool.remove(message.id, area);
    await kickServer(spool.dir);
    if (json) return print({ deleted: message.id, area });
    return say(`deleted ${message.id} from ${area}`);
  },
};

type Area = 'queue' | 'failed';

async function find(spool: SpoolStore, id: string): Promise<[Area, SpooledMessage]> {
  for (const area of ['queue', 'failed'] as const) {
    const message = await spool.read(id, area);
    if (message) return [area, message];
  }
  throw new Error(`no message ${id} in the queue or the failed area`);
}

/** A provider's refusal with what it means, for a table cell. */
function withHint(error: string | undefined): string {
  const hint = error && smtpReplyHint(error);
  return hint ? `${error} (hint: ${hint})` : (error ?? '');
}

function pendingOf(message: SpooledMessage): string[] {
  const done = new Set([...message.state.delivered, ...message.state.refused.map((r) => r.address)]);
  return message.envelope.to.filter((address) => !done.has(address));
}

function age(message: SpooledMessage): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(message.envelope.receivedAt)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

function print(value: unknown): number {
  console.log(JSON.stringify(value, null, 2));
  return 0;
}

function say(line: string): number {
  console.log(line);
  return 0;
}

/** One area of the spool as a table (or JSON), with a count line. */
async function listArea(
  spool: SpoolStore,
  area: 'queue' | 'failed',
  json: boolean,
  view: { header: string[]; row: (message: SpooledMessage) => string[]; none: string; count: string },
): Promise<number> {
  const messages = await spool.list(area);
  if (json) return print(messages);
  if (messages.length === 0) return say(view.none);
  printTable(messages, view.row, view.header);
  return say(`${messages.length} ${view.count}`);
}
