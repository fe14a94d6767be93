import type { BridgeEvent } from '../events.js';

const DAY_MS = 86_400_000;

/** How the last delivery attempt for a device's mail ended: delivered, still queued, or given up on. */
export type DeliveryOutcome = 'delivered' | 'deferred' | 'failed';

/** What the status page shows about one device since the bridge started. */
export interface DeviceActivity {
  lastSeen?: number;
  clientIp?: string;
  tls?: string;
  mechanism?: string;
  /** Accepted messages per UTC day (day number since the epoch), the last 7 days only. */
  perDay: Map<number, number>;
  lastDelivery?: { at: number; outcome: DeliveryOutcome; detail: string };
}

/** What the status page shows about one upstream since the bridge started. */
export interface UpstreamActivity {
  lastSuccess?: number;
  lastError?: { at: number; response: string };
  /** Since when every attempt failed at the upstream itself; undefined while it answers. */
  failingSince?: number;
  backoffUntil?: number;
}

/**
 * The bridge's recent history, kept in memory from the stages' events (it
 * starts empty at each start; the spool and the log are the lasting record).
 */
export class Activity {
  readonly devices = new Map<string, DeviceActivity>();
  readonly upstreams = new Map<string, UpstreamActivity>();

  constructor(private readonly now: () => number = Date.now) {}

  record(event: BridgeEvent): void {
    const at = this.now();
    switch (event.type) {
      case 'authenticated':
        Object.assign(this.device(event.device), { lastSeen: at, clientIp: event.clientIp, tls: event.tls, mechanism: event.mechanism });
        break;
      case 'accepted': {
        const device = this.device(event.device);
        Object.assign(device, { lastSeen: at, clientIp: event.clientIp, tls: event.tls, mechanism: event.mechanism ?? 'none' });
        const day = Math.floor(at / DAY_MS);
        device.perDay.set(day, (device.perDay.get(day) ?? 0) + 1);
        for (const old of device.perDay.keys()) if (old <= day - 7) device.perDay.delete(old);
        break;
      }
      case 'delivered':
        this.device(event.device).lastDelivery = { at, outcome: 'delivered', detail: `via ${event.upstream}` };
        break;
      case 'deferred':
        this.device(event.device).lastDelivery = { at, outcome: 'deferred', detail: event.response };
        break;
      case 'failed':
        this.device(event.device).lastDelivery = { at, outcome: 'failed', detail: event.response };
        break;
      case 'upstream-ok': {
        const upstream = this.upstream(event.upstream);
        Object.assign(upstream, { lastSuccess: at, failingSince: undefined, backoffUntil: undefined });
        break;
      }
      case 'upstream-error': {
        const upstream = this.upstream(event.upstream);
        upstream.lastError = { at, response: event.response };
        upstream.failingSince ??= at;
        upstream.backoffUntil = event.backoffUntil;
        break;
      }
    }
  }

  /** Messages a device handed over today (UTC) and in the last 7 days. */
  counts(device: DeviceActivity | undefined): { today: number; week: number } {
    const today = Math.floor(this.now() / DAY_MS);
    let week = 0;
    for (const [day, count] of device?.perDay ?? []) if (day > today - 7) week += count;
    return { today: device?.perDay.get(today) ?? 0, week };
  }

  private device(name: string): DeviceActivity {
    let device = this.devices.get(name);
    if (!device) this.devices.set(name, (device = { perDay: new Map() }));
    return device;
  }

  private upstream(name: string): UpstreamActivity {
    let upstream = this.upstreams.get(name);
    if (!upstream) this.upstreams.set(name, (upstream = {}));
    return upstream;
  }
}
