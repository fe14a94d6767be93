import type { DeliverySettings } from '../config/schema.js';
import { ignoreEvents, type EventSink } from '../events.js';
import type { Logger } from '../observe/logger.js';
import type { SpooledMessage, SpoolStore } from '../spool/store.js';
import { nextDelay } from './backoff.js';
import { ConcurrencyWindow } from './concurrency-window.js';
import { Pace } from './pace.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { smtpReplyHint } from './provider-hints.js';
import { DeliveryFailure, type Accepted, type Transport } from './transport.js';

/** How long a delivery cut off at shutdown may take to save its attempt in the spool. */
const CUT_OFF_SETTLE_MS = 1000;

/** A policy decision the scheduler consults: messages of a held device wait, untouched. */
export interface DeviceHold {
  isHeld(device: string): boolean;
}

/** What the device should hear about a message it just handed over. */
export type Verdict =
  { status: 'delivered'; response: string } | { status: 'refused'; code: number; response: string } | { status: 'queued'; id: string };

/** A message waiting for its next attempt: enough to pick it without reading the spool. */
interface Due {
  at: number;
  upstream: string;
  device: string;
}

/** One upstream's share of the work: how many deliveries run and may run, its pace, and whether it is backing off. */
interface Lane {
  upstream: string;
  /** The transport the window and pace were made for; a reload may replace it. */
  transport?: Transport;
  active: number;
  window: ConcurrencyWindow;
  pace?: Pace;
  /** Whether the pace has held messages back since the last start, so it is logged once per stretch. */
  paced: boolean;
  failures: number;
  backoffUntil: number;
}

/**
 * Postfix's qmgr in small: decides when each spooled message is tried, runs
 * as many deliveries per upstream as its provider takes (learnt, up to
 * `concurrency`) and no faster than its `rate`, retries with backoff, and
 * moves what cannot be delivered to the failed area. The spool files are
 * the truth; the schedule in memory is rebuilt from them by scan().
 */
export class Scheduler {
  private readonly lanes = new Map<string, Lane>();
  private readonly due = new Map<string, Due>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer?: Timer;
  private timerAt = 0;
  private rescanTimer?: Timer;
  private stopping = false;

  constructor(
    private readonly spool: SpoolStore,
    private readonly transports: ReadonlyMap<string, Transport>,
    private readonly settings: DeliverySettings,
    private readonly logger: Logger,
    private readonly hold: DeviceHold = { isHeld: () => false },
    private readonly clock: Clock = systemClock,
    private readonly events: EventSink = ignoreEvents,
  ) {}

  /** Picks up every message already in the spool, e.g. after a restart or a crash. */
  async start(): Promise<void> {
    const pending = await this.scan();
    if (pending > 0) this.logger.info({ messages: pending }, 'resuming queued messages');
    // A safety net under the queue tools' kick: files changed by hand are noticed within a minute.
    this.rescanTimer = this.clock.setInterval(
      () => void this.scan().catch((err: Error) => this.logger.error({ err: err.message }, 'spool scan failed')),
      60_000,
    );
    this.rescanTimer.unref();
  }

  /** Rebuilds the schedule from the spool (new, retried and deleted messages); returns how many wait in it. */
  async scan(): Promise<number> {
    const ids = new Set(await this.spool.ids());
    for (const id of this.due.keys()) if (!ids.has(id)) this.due.delete(id);
    for (const id of ids) {
      if (this.inFlight.has(id)) continue;
      const message = await this.spool.read(id);
      if (message) this.due.set(id, dueOf(message, Date.parse(message.state.nextAttemptAt) || this.clock.now()));
    }
    const waiting = this.due.size;
    this.tick();
    return waiting;
  }

  /**
   * Takes a freshly spooled message. If its upstream has a free slot, delivery
   * starts at once and the device may hear the provider's verdict, waiting at
   * most `sync_wait`; otherwise it hears "queued" without waiting at all.
   */
  submit(message: SpooledMessage): Promise<Verdict> {
    const queued: Verdict = { status: 'queued', id: message.id };
    const lane = this.lane(message.envelope.upstream);
    if (this.stopping || !this.canStart(lane, message.conn.device)) {
      this.due.set(message.id, dueOf(message, this.clock.now()));
      this.wakeAt(this.clock.now());
      return Promise.resolve(queued);
    }
    const verdict = new Promise<Verdict>((resolve) => {
      const timer = this.clock.setTimeout(() => resolve(queued), this.settings.sync_wait);
      this.launch(message.id, lane, message, (outcome) => {
        this.clock.clearTimeout(timer);
        resolve(outcome);
      });
    });
    return verdict;
  }

  /**
   * A queue tool changed the spool (retry, delete, unfreeze). An operator's
   * retry outranks an upstream's backoff, so that is forgotten too.
   */
  async kicked(): Promise<void> {
    for (const lane of this.lanes.values()) lane.backoffUntil = 0;
    await this.scan();
  }

  /**
   * Stops starting deliveries and waits (up to shutdown_wait) for those in
   * flight; then closes the transports, which cuts off deliveries still
   * hanging, and gives each a moment to record its attempt in the spool.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.clock.clearTimeout(this.timer);
    this.clock.clearInterval(this.rescanTimer);
    await this.inFlightSettled(this.settings.shutdown_wait);
    await Promise.all([...this.transports.values()].map((transport) => transport.close()));
    await this.inFlightSettled(CUT_OFF_SETTLE_MS);
  }

  private async inFlightSettled(withinMs: number): Promise<void> {
    let timer: Timer | undefined;
    const timeout = new Promise<void>((resolve) => (timer = this.clock.setTimeout(resolve, withinMs)));
    await Promise.race([Promise.all(this.inFlight.values()), timeout]);
    this.clock.clearTimeout(timer);
  }

  private lane(upstream: string): Lane {
    const transport = this.transports.get(upstream);
    let lane = this.lanes.get(upstream);
    if (!lane) {
      lane = {
        upstream,
        transport,
        active: 0,
        window: new ConcurrencyWindow(transport?.concurrency ?? 1),
        pace: transport?.rate ? new Pace(transport.rate) : undefined,
        paced: false,
        failures: 0,
        backoffUntil: 0,
      };
      this.lanes.set(upstream, lane);
    } else if (lane.transport !== transport) {
      // A reload replaced the upstream: what was learnt about the provider stays, within its new maximum and rate.
      lane.transport = transport;
      lane.window.resize(transport?.concurrency ?? 1);
      if (JSON.stringify(transport?.rate) !== JSON.stringify(lane.pace?.rates))
        lane.pace = transport?.rate ? new Pace(transport.rate) : undefined;
    }
    return lane;
  }

  private hasRoom(lane: Lane): boolean {
    return lane.active < lane.window.limit;
  }

  /** When the lane's rate lets the next delivery start (`now` if it may); logs the first hold-up of a stretch. */
  private pacedUntil(lane: Lane, now: number): number {
    const at = lane.pace?.readyAt(now) ?? now;
    if (at > now && !lane.paced) {
      lane.paced = true;
      this.logger.info(
        // Infinity: every slot of the rate is held by a running delivery, whose end frees one at a time not known yet.
        { upstream: lane.upstream, rate: lane.pace!.toString(), until: Number.isFinite(at) ? new Date(at).toISOString() : undefined },
        'upstream rate reached',
      );
    }
    return at;
  }

  private canStart(lane: Lane, device: string): boolean {
    const now = this.clock.now();
    return this.hasRoom(lane) && lane.backoffUntil <= now && this.pacedUntil(lane, now) <= now && !this.hold.isHeld(device);
  }

  /** Makes sure tick() runs by `at`: one timer, moved only ever earlier. */
  private wakeAt(at: number): void {
    if (this.stopping || (this.timer && this.timerAt <= at)) return;
    this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    // setTimeout takes at most 2^31-1 ms; a longer wait simply wakes early and re-arms.
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.tick();
      },
      Math.min(Math.max(0, at - this.clock.now()), 2 ** 31 - 1),
    );
    this.timer.unref();
  }

  /**
   * Starts due messages, in the order they were queued, while their upstreams have
   * room; decides from memory and reads the spool only to deliver. It stops
   * looking once every upstream is busy, since each finished delivery ticks
   * again: a backlog costs a few steps per delivery, not a walk over all of it.
   */
  private tick(): void {
    const now = this.clock.now();
    let next = Infinity;
    for (const [id, entry] of this.due) {
      if (this.stopping || this.allBusy()) return;
      if (entry.at <= now && !this.inFlight.has(id)) {
        const lane = this.lane(entry.upstream);
        if (lane.backoffUntil > now) entry.at = lane.backoffUntil;
        else if (this.hold.isHeld(entry.device)) entry.at = now + this.settings.retry_initial;
        else {
          const paced = this.pacedUntil(lane, now);
          // Held back by the rate, it keeps its place in the line and the timer wakes when the rate allows.
          if (paced > now) next = Math.min(next, paced);
          // Started now, or waiting for a slot of its busy upstream: a finished delivery ticks again.
          else if (this.hasRoom(lane)) this.launch(id, lane);
          continue;
        }
      }
      next = Math.min(next, entry.at);
    }
    if (next !== Infinity) this.wakeAt(next);
  }

  private allBusy(): boolean {
    for (const upstream of this.transports.keys()) if (this.hasRoom(this.lane(upstream))) return false;
    return true;
  }

  /**
   * Runs one attempt. `fresh` is the message as just spooled; without it the
   * record is read again, since a queue tool may have changed or deleted it.
   */
  private launch(id: string, lane: Lane, fresh?: SpooledMessage, report?: (verdict: Verdict) => void): void {
    const waiting = this.due.get(id);
    this.due.delete(id);
    lane.active++;
    lane.pace?.started();
    lane.paced = false;
    const run = (fresh ? Promise.resolve(fresh) : this.spool.read(id))
      .then((message) => (message ? this.attempt(message, lane) : ({ status: 'queued', id } as const)))
      .then((verdict) => report?.(verdict))
      .catch((err: Error) => {
        this.logger.error({ queue_id: id, device: fresh?.conn.device ?? waiting?.device, err: err.message }, 'delivery attempt crashed');
        if (waiting ?? fresh) this.due.set(id, { ...(waiting ?? dueOf(fresh!, 0)), at: this.clock.now() + this.settings.retry_initial });
        report?.({ status: 'queued', id });
      })
      .finally(() => {
        lane.active--;
        lane.pace?.ended(this.clock.now());
        this.inFlight.delete(id);
        this.tick();
      });
    this.inFlight.set(id, run);
  }

  private async attempt(message: SpooledMessage, lane: Lane): Promise<Verdict> {
    const { conn, envelope, state } = message;
    const queued: Verdict = { status: 'queued', id: message.id };
    if (!this.spool.lock(message.id)) return queued;
    const started = this.clock.now();
    const attempt = state.attempts + 1;
    const context = { queue_id: message.id, device: conn.device, client_ip: conn.clientIp, upstream: envelope.upstream, attempt };
    const done = new Set([...state.delivered, ...state.refused.map((r) => r.address)]);
    const pending = envelope.to.filter((address) => !done.has(address));
    try {
      const transport = this.transports.get(envelope.upstream);
      let result: Accepted;
      try {
        if (!transport) throw new DeliveryFailure('temporary', `no upstream named ${envelope.upstream}`);
        // A record edited by hand (or by an older crash) may have nobody left to send to: settle it without a send.
        result = pending.length
          ? await transport.send({ sender: envelope.sender, to: pending }, () => this.spool.openBody(message.id))
          : { response: 'no recipients left', accepted: [], refused: [] };
        if (pending.length) this.events({ type: 'upstream-ok', upstream: envelope.upstream });
      } catch (err) {
        const failure = err instanceof DeliveryFailure ? err : new DeliveryFailure('temporary', (err as Error).message);
        if (this.sessionRefused(lane, failure)) {
          // Nothing of the message was sent and nothing is wrong with it: it goes again when a session frees up, as the same attempt.
          this.due.set(message.id, dueOf(message, this.clock.now()));
          return queued;
        }
        result = {
          response: failure.message,
          accepted: [],
          refused: pending.map((address) => ({
            address,
            code: failure.kind === 'permanent' ? (failure.code ?? 550) : undefined,
            response: failure.message,
          })),
        };
        this.noteLaneFailure(lane, failure);
        this.events({
          type: 'upstream-error',
          upstream: envelope.upstream,
          response: failure.message,
          backoffUntil: failure.unreachable ? lane.backoffUntil : undefined,
        });
      }
      if (result.accepted.length > 0) this.noteLaneSuccess(lane);
      const delay_ms = this.clock.now() - Date.parse(envelope.receivedAt);
      const permanent = result.refused.filter((r) => (r.code ?? 0) >= 500);
      const temporary = result.refused.filter((r) => (r.code ?? 0) < 500);
      state.delivered.push(...result.accepted);
      state.refused.push(...permanent.map(({ address, response }) => ({ address, response })));
      if (result.accepted.length > 0) {
        this.logger.info({ ...context, via: result.via, to: result.accepted, response: result.response, delay_ms }, 'delivered');
        this.events({ type: 'delivered', device: conn.device, upstream: result.via ?? envelope.upstream, delayMs: delay_ms });
      }
      for (const refusal of permanent) {
        this.logger.error(
          { ...context, to: refusal.address, response: refusal.response, hint: smtpReplyHint(refusal.response), delay_ms },
          'bounced',
        );
      }

      if (temporary.length === 0) {
        if (state.refused.length === 0) {
          await this.spool.remove(message.id);
          return { status: 'delivered', response: result.response };
        }
        const reason = state.refused.map((r) => `${r.address}: ${r.response}`).join('; ');
        await this.fail(message, reason, 'bounced');
        if (state.delivered.length > 0) return queued;
        return { status: 'refused', code: permanent[0]?.code ?? 554, response: permanent[0]?.response ?? reason };
      }

      state.attempts = attempt;
      state.lastError = temporary[0].response;
      const age = this.clock.now() - Date.parse(envelope.receivedAt);
      if (age >= this.settings.max_age) {
        this.logger.error({ ...context, response: state.lastError, delay_ms }, 'expired');
        await this.fail(message, `expired after ${attempt} attempts: ${state.lastError}`, 'expired');
        return queued;
      }
      const next = this.clock.now() + nextDelay(attempt, this.settings.retry_initial, this.settings.retry_max);
      state.nextAttemptAt = new Date(next).toISOString();
      this.logger.warn(
        {
          ...context,
          to: temporary.map((r) => r.address),
          response: state.lastError,
          hint: smtpReplyHint(state.lastError),
          delay_ms,
          next_attempt: state.nextAttemptAt,
        },
        'deferred',
      );
      this.events({ type: 'deferred', device: conn.device, upstream: envelope.upstream, response: state.lastError });
      if (await this.spool.saveState(message)) this.due.set(message.id, dueOf(message, next));
      return queued;
    } finally {
      this.spool.unlock(message.id);
      this.logger.debug({ ...context, took_ms: this.clock.now() - started }, 'attempt finished');
    }
  }

  private noteLaneSuccess(lane: Lane): void {
    lane.failures = 0;
    const raised = lane.window.accepted(lane.active, this.clock.now());
    if (raised) this.logger.debug({ upstream: lane.upstream, concurrency: raised }, 'upstream concurrency raised');
  }

  /**
   * Whether the provider turned one more session down while serving others
   * of ours: that is its session limit speaking, and from now on the bridge
   * keeps to what it served. Turned down with none of ours open, it is the
   * provider refusing everything, answered like any other temporary failure.
   */
  private sessionRefused(lane: Lane, failure: DeliveryFailure): boolean {
    if (!failure.servedSessions) return false;
    const was = lane.window.limit;
    const lowered = lane.window.refused(failure.servedSessions, this.clock.now());
    if (lowered)
      this.logger.warn({ upstream: lane.upstream, concurrency: lowered, was, response: failure.message }, 'upstream concurrency lowered');
    return true;
  }

  private noteLaneFailure(lane: Lane, failure: DeliveryFailure): void {
    if (!failure.unreachable) return;
    const was = lane.window.limit;
    const lowered = lane.window.unreachable();
    if (lowered)
      this.logger.warn({ upstream: lane.upstream, concurrency: lowered, was, response: failure.message }, 'upstream concurrency lowered');
    lane.failures++;
    lane.backoffUntil = this.clock.now() + nextDelay(lane.failures, this.settings.retry_initial, this.settings.retry_max);
  }

  private async fail(message: SpooledMessage, reason: string, why: 'bounced' | 'expired'): Promise<void> {
    message.state.failedAt = new Date(this.clock.now()).toISOString();
    message.state.reason = reason;
    await this.spool.move(message, 'queue', 'failed');
    this.events({
      type: 'failed',
      device: message.conn.device,
      upstream: message.envelope.upstream,
      queueId: message.id,
      reason: why,
      response: reason,
    });
  }
}

function dueOf(message: SpooledMessage, at: number): Due {
  return { at, upstream: message.envelope.upstream, device: message.conn.device };
}
