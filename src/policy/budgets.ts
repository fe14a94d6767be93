import { formatRate, type Rate } from '../config/schema.js';
import type { Alert } from '../observe/alert.js';
import type { Logger } from '../observe/logger.js';
import type { DevicePolicy } from './devices.js';
import type { FreezeRecord, FreezeStore } from './freeze-store.js';
import { SlidingWindow } from './sliding-window.js';

/** Whether a device may go on: yes, not now (over a budget), or not until the operator says so (frozen). */
export type Admission =
  { ok: true } | { ok: false; refusal: 'over-budget'; rule: 'messages' | 'recipients'; limit: Rate } | { ok: false; refusal: 'frozen' };

/** Who is sending, for the freeze record and the alert. */
export interface Sender {
  clientIp: string;
  saslUsername?: string;
}

interface Counters {
  messages: SlidingWindow[];
  recipients: SlidingWindow[];
  /** Every message attempt, refused or not, against `freeze_after`. */
  freeze?: { rate: Rate; attempts: SlidingWindow };
}

/**
 * Per-device sending budgets (`limits`) and the freeze they lead to
 * (`freeze_after`). A message counts when the device starts it (MAIL FROM),
 * as Postfix's anvil counts message rates, and a recipient when it is
 * accepted (RCPT TO). A leaked password therefore sends at most the
 * device's usual pace; one that keeps pushing past it freezes the device.
 * Counters live in memory and start afresh with the server; frozen state is
 * on disk (FreezeStore).
 */
export class SendingBudgets {
  private readonly counters = new Map<string, Counters>();

  constructor(
    private readonly freezes: FreezeStore,
    private readonly alert: Alert,
    private readonly logger: Logger,
  ) {}

  /** At MAIL FROM: may this device start another message now? */
  admitMessage(device: DevicePolicy, sender: Sender, now = Date.now()): Admission {
    if (this.freezes.isFrozen(device.name)) return { ok: false, refusal: 'frozen' };
    const counters = this.countersOf(device);
    if (counters.freeze) {
      const { rate, attempts } = counters.freeze;
      if (!attempts.hasRoom(now)) {
        this.freeze(device, sender, `${rate.count + 1} message attempts within ${rate.per} (freeze_after ${formatRate(rate)})`);
        return { ok: false, refusal: 'frozen' };
      }
      attempts.add(now);
    }
    return take(counters.messages, device.messageLimits, 'messages', now);
  }

  /** At RCPT TO: may this device add another recipient now? */
  admitRecipient(device: DevicePolicy, now = Date.now()): Admission {
    if (this.freezes.isFrozen(device.name)) return { ok: false, refusal: 'frozen' };
    return take(this.countersOf(device).recipients, device.recipientLimits, 'recipients', now);
  }

  private countersOf(device: DevicePolicy): Counters {
    let counters = this.counters.get(device.name);
    if (!counters) {
      const windowFor = (rate: Rate) => new SlidingWindow(rate.count, rate.window);
      const freezeAfter = device.freezeAfter;
      counters = {
        messages: device.messageLimits.map(windowFor),
        recipients: device.recipientLimits.map(windowFor),
        freeze: freezeAfter && { rate: freezeAfter, attempts: windowFor(freezeAfter) },
      };
      this.counters.set(device.name, counters);
    }
    return counters;
  }

  private freeze(device: DevicePolicy, sender: Sender, reason: string): void {
    const record: FreezeRecord = {
      device: device.name,
      frozen_at: new Date().toISOString(),
      reason,
      client_ip: sender.clientIp,
      sasl_username: sender.saslUsername,
    };
    this.freezes.freeze(record).catch((err: Error) => {
      // Frozen in memory all the same; only a restart would forget it.
      this.logger.error({ device: device.name, err: err.message }, 'freeze not saved');
    });
    this.counters.delete(device.name);
    this.logger.error({ device: device.name, client_ip: sender.clientIp, sasl_username: sender.saslUsername, reason }, 'device frozen');
    this.alert.send({ event: 'device-frozen', ...record });
  }
}

/** Counts one event against every window, or against none if any is full. */
function take(windows: SlidingWindow[], rates: readonly Rate[], rule: 'messages' | 'recipients', now: number): Admission {
  const full = windows.findIndex((window) => !window.hasRoom(now));
  if (full >= 0) return { ok: false, refusal: 'over-budget', rule, limit: rates[full] };
  for (const window of windows) window.add(now);
  return { ok: true };
}
