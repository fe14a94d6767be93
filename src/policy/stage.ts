import type { Config } from '../config/schema.js';
import type { Alert } from '../observe/alert.js';
import type { Logger } from '../observe/logger.js';
import { Authenticator } from './authenticator.js';
import { SendingBudgets } from './budgets.js';
import { DeviceDirectory } from './devices.js';
import { FreezeStore } from './freeze-store.js';
import { Lockout } from './lockout.js';

/** The policy stage as the others see it: who a device is, what it may do now, and whose mail must wait. */
export interface PolicyStage {
  devices: DeviceDirectory;
  authenticator: Authenticator;
  budgets: SendingBudgets;
  /** Also the delivery scheduler's DeviceHold: a frozen device's queued messages wait. */
  freezes: FreezeStore;
}

export async function openPolicy(config: Config, logger: Logger, alert: Alert): Promise<PolicyStage> {
  const devices = new DeviceDirectory(config.devices);
  const freezes = new FreezeStore(config.spool.dir);
  await freezes.init();
  // A freeze outlives restarts; say so at every start until someone clears it.
  for (const record of await freezes.list()) {
    logger.warn(
      { device: record.device, frozen_at: record.frozen_at, reason: record.reason },
      'device is frozen: AUTH refused, queued messages held',
    );
  }
  return {
    devices,
    freezes,
    authenticator: new Authenticator(devices, new Lockout(config.lockout), freezes, logger),
    budgets: new SendingBudgets(freezes, alert, logger),
  };
}
