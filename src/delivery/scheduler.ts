/**
 * The scheduler: leases due messages from the store and hands each to a delivery run, at most
 * `concurrency` at a time. It wakes at once when mail is queued (the store's onEnqueued), when a
 * run finishes, and otherwise when the store says the next message is due or a lease expires —
 * never by polling. Leases are renewed while a run lasts; a worker that dies loses them when they
 * expire, and another worker (or node) takes the message: delivery is at least once, never lost.
 *
 * Time is the injected DeliveryClock's: tests move it instead of sleeping.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { QueueStore } from '../store/queue-store.js';
import type { Lease } from '../store/queue-types.js';
import type { DeliveryClock, TimerHandle } from './delivery-clock.js';

export interface DeliverySchedulerOptions {
  readonly store: QueueStore;
  /**
   * Runs one leased message; must not throw (failures are its own to record). A run calls
   * `slotFree` once it needs no delivery slot any more (its network work is over and only its
   * report is left to write): the slot goes to the next message while the report waits to be
   * batched with others. The lease keeps the message from being taken again until the report is
   * written (or, if the process dies first, until it expires: at least once, never lost).
   */
  readonly deliver: (lease: Lease, signal: AbortSignal, slotFree: () => void) => Promise<void>;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly clock: DeliveryClock;
  readonly log: Logger;
  /** This worker's name in leases; default host:pid:random. */
  readonly worker?: string;
}

/** How long a few free delivery slots wait for more to free up before leasing (see tick). */
const LEASE_COALESCE_MS = 5;

interface InFlight {
  lease: Lease;
  readonly controller: AbortController;
  done: Promise<void>;
  renewTimer: TimerHandle | null;
  /** Its slot is free; only its report is still being written. */
  reporting: boolean;
}

export class DeliveryScheduler {
  readonly worker: string;
  private readonly inFlight = new Map<string, InFlight>();
  /** Runs in `inFlight` that hold no slot any more (see `deliver`'s slotFree). */
  private reporting = 0;
  private wakeTimer: TimerHandle | null = null;
  private tickQueued = false;
  /** A tick held back while a few slots were free (see LEASE_COALESCE_MS). */
  private coalesceTimer: NodeJS.Timeout | null = null;
  /** Fewer free slots than this, with runs in flight, wait for more before leasing. */
  private readonly leaseBatch: number;
  private running = false;
  private stopping: Promise<void> | null = null;
  private unsubscribe: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];
  /** Messages handed to delivery runs so far. */
  started = 0;

  constructor(private readonly opts: DeliverySchedulerOptions) {
    this.worker = opts.worker ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.leaseBatch = Math.max(1, Math.floor(opts.concurrency / 4));
  }

  start(): void {
    if (this.running || this.stopping) return;
    this.running = true;
    this.unsubscribe = this.opts.store.onEnqueued(() => this.poke());
    this.poke();
  }

  /** Look at the queue soon (once per event-loop turn, however many pokes). */
  poke(): void {
    if (!this.running || this.tickQueued) return;
    this.tickQueued = true;
    setImmediate(() => {
      this.tickQueued = false;
      this.tick();
    });
  }

  /** Runs not finished yet, reporting ones included. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Runs that hold a delivery slot. */
  private get slotsTaken(): number {
    return this.inFlight.size - this.reporting;
  }

  /**
   * Resolves when nothing is in flight and nothing is due now (tests: "let the queue settle
   * before moving the clock").
   */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    if (this.inFlight.size > 0 || this.tickQueued) return false;
    const next = this.opts.store.nextWakeAt();
    return next === null || next > this.opts.clock.now() || !this.running;
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private tick(force = false): void {
    if (!this.running) return;
    const { store, clock, log } = this.opts;
    const room = this.opts.concurrency - this.slotsTaken;
    // Runs finish one by one; leasing for each alone costs a write transaction per message. With
    // runs still in flight, a slot or two waits for others (at most LEASE_COALESCE_MS, wall clock,
    // so a slow destination holding the other slots delays new mail by no more than that).
    if (!force && room > 0 && room < this.leaseBatch && this.slotsTaken > 0) {
      this.coalesceTimer ??= setTimeout(() => {
        this.coalesceTimer = null;
        this.tick(true);
      }, LEASE_COALESCE_MS);
      return;
    }
    if (this.coalesceTimer !== null) {
      clearTimeout(this.coalesceTimer);
      this.coalesceTimer = null;
    }
    if (this.wakeTimer !== null) {
      clock.clearTimer(this.wakeTimer);
      this.wakeTimer = null;
    }
    let leased: Lease[] = [];
    if (room > 0) {
      try {
        leased = store.leaseDue(this.worker, clock.now(), room, this.opts.leaseMs);
      } catch (err) {
        log.error({ err }, 'delivery: cannot lease due messages; trying again in 10 s');
        this.wakeTimer = clock.setTimer(() => this.tick(), 10_000);
        return;
      }
    }
    for (const lease of leased) this.run(lease);
    if (this.slotsTaken < this.opts.concurrency) this.armWake(leased.length > 0);
    this.checkIdle();
  }

  /** Sleeps until the store says something is due (a finishing run wakes us earlier). */
  private armWake(leasedSome: boolean): void {
    const { store, clock } = this.opts;
    let next: number | null;
    try {
      next = store.nextWakeAt();
    } catch {
      next = clock.now() + 10_000;
    }
    if (next === null) return;
    // Something due now that we could not lease is someone else's; do not spin on it.
    const delay = Math.max(next - clock.now(), leasedSome ? 0 : 1000);
    this.wakeTimer = clock.setTimer(() => {
      this.wakeTimer = null;
      this.tick();
    }, delay);
  }

  private run(lease: Lease): void {
    const { store, clock, log } = this.opts;
    const controller = new AbortController();
    this.started++;
    const entry: InFlight = { lease, controller, done: Promise.resolve(), renewTimer: null, reporting: false };
    const slotFree = (): void => {
      if (entry.reporting) return;
      entry.reporting = true;
      this.reporting++;
      this.poke();
    };
    const renew = (): void => {
      entry.renewTimer = clock.setTimer(() => {
        try {
          const renewed = store.renewLease(entry.lease, clock.now(), this.opts.leaseMs);
          if (renewed === null) {
            log.warn({ queue_id: lease.id }, 'delivery: lease lost while delivering');
            return;
          }
          entry.lease = renewed;
        } catch (err) {
          log.warn({ queue_id: lease.id, err }, 'delivery: cannot renew a lease');
        }
        renew();
      }, Math.max(1000, Math.floor(this.opts.leaseMs / 3)));
    };
    renew();
    this.inFlight.set(lease.id, entry);
    entry.done = (async () => {
      try {
        await this.opts.deliver(lease, controller.signal, slotFree);
      } catch (err) {
        log.error({ queue_id: lease.id, err }, 'delivery: run failed; releasing the message');
        try {
          store.releaseLease(entry.lease);
        } catch {
          // The lease expires by itself.
        }
      } finally {
        if (entry.renewTimer !== null) clock.clearTimer(entry.renewTimer);
        if (entry.reporting) this.reporting--;
        this.inFlight.delete(lease.id);
        this.poke();
        this.checkIdle();
      }
    })();
  }

  /**
   * Stops leasing; lets runs in flight finish for up to `graceMs` (wall-clock), then aborts them
   * (their unfinished recipients stay queued and their leases are released).
   */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= (async () => {
      this.running = false;
      this.unsubscribe?.();
      if (this.coalesceTimer !== null) clearTimeout(this.coalesceTimer);
      this.coalesceTimer = null;
      if (this.wakeTimer !== null) this.opts.clock.clearTimer(this.wakeTimer);
      this.wakeTimer = null;
      const all = (): Promise<void[]> => Promise.all([...this.inFlight.values()].map((f) => f.done));
      if (this.inFlight.size > 0) {
        let timer: NodeJS.Timeout | null = null;
        const graceOver = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), graceMs);
        });
        const r = await Promise.race([all().then(() => 'done' as const), graceOver]);
        if (timer) clearTimeout(timer);
        if (r === 'timeout') {
          this.opts.log.info({ in_flight: this.inFlight.size }, 'delivery: grace over; stopping deliveries in flight');
          for (const f of this.inFlight.values()) f.controller.abort();
          await all();
        }
      }
      for (const w of this.idleWaiters.splice(0)) w();
    })();
    return this.stopping;
  }
}
