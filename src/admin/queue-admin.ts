/**
 * Queue administration: the one service behind `postern queue …`, `postern track`, `postern
 * status` and the HTTP API (which the dashboard uses). Listing and showing read the store through
 * tracking; changes go through the store's admin methods (each in a transaction with its
 * tracking event, refused while a delivery run holds the message); a bounce goes through the
 * delivery side's bounce machinery (DSN included), handed in as a Bouncer.
 */
import type { QueueStore } from '../store/queue-store.js';
import type { AdminChange } from '../store/admin-change.js';
import type { MessageState, QueueId } from '../store/queue-types.js';
import type { TrackingSearch } from '../store/tracking-record.js';
import { TrackingQuery, type OverviewSeries, type Rates, type TrackedMessage, type TrackedMessageWithTimeline, type TrackResult } from '../tracking/tracking-query.js';

/** Hard-bounces a queued message with a DSN to its sender (delivery's OutcomeRecorder). */
export interface Bouncer {
  bounce(id: QueueId, reason: string): Promise<AdminChange>;
}

export const QUEUE_ACTIONS = ['retry', 'hold', 'release', 'bounce', 'delete'] as const;
export type QueueAction = (typeof QUEUE_ACTIONS)[number];

export interface ListFilter {
  readonly state?: MessageState;
  readonly domain?: string;
  /** Received at least this long ago. */
  readonly olderThanMs?: number;
  readonly limit?: number;
}

export interface ActionResult {
  readonly id: QueueId;
  readonly result: AdminChange;
}

export interface StatusReport {
  readonly now: number;
  readonly uptimeMs: number;
  /** SMTP connections open now (null when this process does not receive). */
  readonly connections: number | null;
  readonly rates: Rates;
  readonly queue: { readonly queued: number; readonly deferred: number; readonly held: number; readonly done: number };
  /** Recipient outcomes over the last 24 hours. */
  readonly bounces24h: { readonly soft: number; readonly hard: number; readonly delivered: number };
}

export interface QueueAdminOptions {
  readonly store: QueueStore;
  readonly clock?: () => number;
  /** Null: `bounce` answers 'wrong-state' (no delivery side to send the DSN). */
  readonly bouncer?: Bouncer | null;
  /** SMTP connections open now. */
  readonly connections?: () => number;
}

export class QueueAdmin {
  readonly tracking: TrackingQuery;
  private readonly clock: () => number;
  private readonly started: number;

  constructor(private readonly opts: QueueAdminOptions) {
    this.tracking = new TrackingQuery(opts.store);
    this.clock = opts.clock ?? Date.now;
    this.started = this.clock();
  }

  /** The service's clock (the gateway's). */
  now(): number {
    return this.clock();
  }

  list(filter: ListFilter = {}): TrackedMessage[] {
    return this.opts.store
      .listMessages({ state: filter.state, domain: filter.domain, olderThanMs: filter.olderThanMs, limit: filter.limit ?? 1000 })
      .map((m) => this.tracking.describe(m));
  }

  /** Envelope, per-recipient state and the whole timeline; null when unknown. */
  show(id: QueueId): TrackedMessageWithTimeline | null {
    return this.tracking.timeline(id);
  }

  /** Queue ids an action over `domain` or everything applies to (queued, or held for release/delete). */
  targets(action: QueueAction, target: { readonly domain?: string; readonly all?: boolean }): QueueId[] {
    if (target.domain === undefined && target.all !== true) return [];
    const states: MessageState[] = action === 'release' ? ['held'] : action === 'delete' ? ['queued', 'held'] : ['queued'];
    return states.flatMap((state) => this.opts.store.listMessages({ state, domain: target.domain }).map((m) => m.id));
  }

  /** One action on one message. */
  async act(action: QueueAction, id: QueueId): Promise<AdminChange> {
    const { store } = this.opts;
    const now = this.clock();
    switch (action) {
      case 'retry': return store.retryMessage(id, now);
      case 'hold': return store.holdMessage(id, now);
      case 'release': return store.releaseMessage(id, now);
      case 'delete': return store.deleteMessage(id, now);
      case 'bounce': {
        if (!this.opts.bouncer) return store.getMessage(id) === null ? 'not-found' : 'wrong-state';
        return this.opts.bouncer.bounce(id, 'bounced by the administrator');
      }
    }
  }

  /** One action on many messages, one at a time, reporting progress after each. */
  async actOnMany(
    action: QueueAction,
    ids: readonly QueueId[],
    onProgress?: (done: number, total: number, last: ActionResult) => void,
  ): Promise<ActionResult[]> {
    const results: ActionResult[] = [];
    for (const id of ids) {
      const r = { id, result: await this.act(action, id) };
      results.push(r);
      onProgress?.(results.length, ids.length, r);
    }
    return results;
  }

  track(search: TrackingSearch): TrackResult {
    return this.tracking.find(search);
  }

  overview(windowMs: number, bucketMs: number): OverviewSeries {
    return this.tracking.overview(this.clock(), windowMs, bucketMs);
  }

  status(): StatusReport {
    const now = this.clock();
    const counts = this.opts.store.counts();
    const deferred = this.opts.store.searchMessages({ outcome: 'deferred', limit: 1_000_000 }).length;
    const day = this.tracking.overview(now, 24 * 3_600_000, 24 * 3_600_000 + 1);
    const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0);
    return {
      now,
      uptimeMs: now - this.started,
      connections: this.opts.connections ? this.opts.connections() : null,
      rates: this.tracking.rates(now),
      queue: { queued: counts.queued, deferred, held: counts.held, done: counts.done },
      bounces24h: { soft: sum(day.soft), hard: sum(day.hard), delivered: sum(day.delivered) },
    };
  }
}
