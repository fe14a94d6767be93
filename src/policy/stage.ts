import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../config/schema.js';
import type { Alert } from '../observe/alert.js';
import type { Logger } from '../observe/logger.js';
import { Authenticator } from './authenticator.js';
import { SendingBudgets } from './budgets.js';
import { DeviceDirectory } from './devices.js';
import { FreezeStore } from './freeze-store.js';
import { Lockout } from './lockout.js';

/**
 * The policy stage as the others see it: who a device is, what it may do
 * now, and whose mail must wait. Callers look its parts up at each use, so
 * reloadPolicy() can replace them for the sessions that follow.
 */
export interface PolicyStage {
  devices: DeviceDirectory;
  authenticator: Authenticator;
  budgets: SendingBudgets;
  lockout: Lockout;
  /** Also the delivery scheduler's DeviceHold: a frozen device's queued messages wait. */
  readonly freezes: FreezeStore;
}

export async function openPolicy(config: Config, logger: Logger, alert: Alert): Promise<PolicyStage> {
  const freezes = new FreezeStore(config.spool.dir);
  await freezes.init();
  // A freeze outlives restarts; say so at every start until someone clears it.
  for (const record of await freezes.list()) {
    logger.warn(
      { device: record.device, frozen_at: record.frozen_at, reason: record.reason },
      'device is frozen: AUTH refused, queued messages held',
    );
  }
  const lockout = new Lockout(config.lockout);
  return { freezes, lockout, ...rules(config, freezes, lockout, logger, alert) };
}

/**
 * Applies a new config's devices, lockout settings and alert to the sessions
 * that follow. Freezes stay (they are on disk), lockout counters stay while
 * `lockout` is unchanged, and sending budgets start afresh, as after a restart.
 */
export function reloadPolicy(policy: PolicyStage, previous: Config, config: Config, logger: Logger, alert: Alert): void {
  const lockout = isDeepStrictEqual(previous.lockout, config.lockout) ? policy.lockout : new Lockout(config.lockout);
  Object.assign(policy, { lockout, ...rules(config, policy.freezes, lockout, logger, alert) });
}

function rules(config: Config, freezes: FreezeStore, lockout: Lockout, logger: Logger, alert: Alert) {
  const devices = new DeviceDirectory(config.devices);
  return {
    devices,
    authenticator: new Authenticator(devices, lockout, freezes, logger),
    budgets: new SendingBudgets(freezes, alert, logger),
  };
}
