import { loadConfig } from '../config/load.js';
import { formatRate, type Config } from '../config/schema.js';
import { DevicePolicy } from '../policy/devices.js';
import { FreezeStore, type FreezeRecord } from '../policy/freeze-store.js';
import { kickServer } from '../spool/signal.js';
import { SpoolStore, type SpooledMessage } from '../spool/store.js';
import { CONFIG_OPTION, JSON_OPTION, DEFAULT_CONFIG, parseCommandArgs, runCommand, UsageError } from './args.js';
import { printTable } from './table.js';

const HELP = `usage: smtp-bridge device list [-c FILE] [--json]
       smtp-bridge device unfreeze NAME [--release | --drop] [-c FILE]

Shows the devices of a bridge and clears a freeze, also while it runs.

actions:
  list             each device: how it logs in, its budgets, whether it is
                   frozen (since when, why) and how many messages it has queued
  unfreeze NAME    lets a frozen device log in again. Its queued messages were
                   held while it was frozen; say what happens to them:
                   --release delivers them, --drop deletes them (needed only
                   when it has some)

options:
  -c, --config FILE   config file (default ${DEFAULT_CONFIG})
      --json          machine-readable output (list)
      --release       deliver the device's held messages (unfreeze)
      --drop          delete the device's held messages (unfreeze)
  -h, --help          show this help`;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        ...CONFIG_OPTION,
        ...JSON_OPTION,
        release: { type: 'boolean', default: false },
        drop: { type: 'boolean', default: false },
      },
      HELP,
      true,
    );
    const [action, name, ...extra] = positionals;
    const valid =
      (action === 'list' && !name && !values.release && !values.drop) ||
      (action === 'unfreeze' && name && !values.json && !(values.release && values.drop));
    if (!valid || extra.length > 0) {
      const problem = action && action !== 'list' && action !== 'unfreeze' ? `unknown action "${action}"\n\n` : '';
      throw new UsageError(`${problem}${HELP}`);
    }
    // Passwords are not needed to look at devices, and a tool must not fail for want of them.
    const { config } = await loadConfig(values.config!, { skipSecrets: true });
    const freezes = new FreezeStore(config.spool.dir);
    const spool = new SpoolStore(config.spool.dir);
    if (action === 'list') return list(config, freezes, spool, values.json!);
    return unfreeze(name!, config, freezes, spool, values.release ? 'release' : values.drop ? 'drop' : undefined);
  });
}

interface DeviceState {
  device: string;
  username?: string;
  auth: string;
  state: 'active' | 'frozen';
  frozen_at?: string;
  reason?: string;
  queued: number;
  limits: string[];
  freeze_after?: string;
}

async function list(config: Config, freezes: FreezeStore, spool: SpoolStore, json: boolean): Promise<number> {
  const frozen = new Map((await freezes.list()).map((record) => [record.device, record]));
  const queued = countByDevice(await queuedMessages(spool));
  const states: DeviceState[] = Object.entries(config.devices).map(([name, entry]) => {
    const device = new DevicePolicy(name, entry);
    const record = frozen.get(name);
    return {
      device: name,
      username: device.requiresAuth ? device.username : undefined,
      auth: device.requiresAuth ? [...device.mechanisms].join(',') : 'none (by address)',
      state: record ? 'frozen' : 'active',
      frozen_at: record?.frozen_at,
      reason: record?.reason,
      queued: queued.get(name) ?? 0,
      limits: [
        ...device.messageLimits.map((r) => `${formatRate(r)} messages`),
        ...device.recipientLimits.map((r) => `${formatRate(r)} recipients`),
      ],
      freeze_after: device.freezeAfter && formatRate(device.freezeAfter),
    };
  });
  // A freeze left behind by a device since removed from the config is still shown, so it can be cleared.
  for (const record of frozen.values()) {
    if (!(record.device in config.devices)) {
      states.push({
        device: record.device,
        auth: '(not in config)',
        state: 'frozen',
        frozen_at: record.frozen_at,
        reason: record.reason,
        queued: queued.get(record.device) ?? 0,
        limits: [],
      });
    }
  }
  if (json) {
    console.log(JSON.stringify(states, null, 2));
    return 0;
  }
  printTable(
    states,
    (s) => [
      s.device,
      s.username ?? '-',
      s.auth,
      s.state === 'frozen' ? `FROZEN since ${s.frozen_at}` : 'active',
      String(s.queued),
      s.freeze_after ?? 'never',
      s.limits.join(', ') || 'none',
    ],
    ['DEVICE', 'USERNAME', 'AUTH', 'STATE', 'QUEUED', 'FREEZE AFTER', 'LIMITS'],
  );
  for (const s of states.filter((state) => state.reason)) console.log(`${s.device} frozen: ${s.reason}`);
  return 0;
}

async function unfreeze(
  name: string,
  config: Config,
  freezes: FreezeStore,
  spool: SpoolStore,
  held: 'release' | 'drop' | undefined,
): Promise<number> {
  const record = (await freezes.list()).find((r: FreezeRecord) => r.device === name);
  // A freeze left by a device since removed from the config is still found above, so it can be cleared.
  if (!record && !(name in config.devices)) throw new Error(`no such device "${name}" (and no freeze of that name)`);
  if (!record) throw new Error(`device "${name}" is not frozen`);
  const messages = (await queuedMessages(spool)).filter((message) => message.conn.device === name);
  if (messages.length > 0 && !held) {
    throw new Error(
      `device "${name}" has ${plural(messages.length, 'queued message')}: add --release to deliver them or --drop to delete them`,
    );
  }
  // Dropped before the freeze goes, so a running server never gets to deliver them.
  if (held === 'drop') for (const message of messages) await spool.remove(message.id);
  await freezes.unfreeze(name);
  // Wakes a running server's scheduler, which held these messages back, instead of leaving them to its next rescan.
  await kickServer(spool.dir);
  const what =
    messages.length === 0
      ? 'no queued messages'
      : `${plural(messages.length, 'queued message')} ${held === 'drop' ? 'deleted' : 'released for delivery'}`;
  console.log(`device "${name}" unfrozen (was frozen since ${record.frozen_at}: ${record.reason}); ${what}`);
  return 0;
}

/** The queue; empty where a server never ran yet. */
async function queuedMessages(spool: SpoolStore): Promise<SpooledMessage[]> {
  try {
    return await spool.list('queue');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function countByDevice(messages: SpooledMessage[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const message of messages) counts.set(message.conn.device, (counts.get(message.conn.device) ?? 0) + 1);
  return counts;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
