/**
 * An administrator's bounce (`postern queue bounce ID`, the API, the dashboard): every waiting
 * recipient of a queued message fails hard (5.0.0) through the ordinary outcome recorder, so the
 * sender gets the same RFC 3464 DSN and tracking the same 'bounced' events as for a bounce by a
 * next hop. The message is leased first, as a delivery run would: never while a run holds it.
 */
import type { QueueStore } from '../store/queue-store.js';
import type { AdminChange } from '../store/admin-change.js';
import type { AttemptRecord, QueueId } from '../store/queue-types.js';
import type { Logger } from 'pino';
import { BounceProfiles } from '../bounce/bounce-profile.js';
import type { PosternConfig } from '../config/config-schema.js';
import { systemClock } from './delivery-clock.js';
import { OutcomeRecorder } from './outcome-recorder.js';
import type { RecipientResult } from './delivery-result.js';

const ADMIN_LEASE_MS = 60_000;

/**
 * The bouncer for a config: the delivery side's recorder settings, except that soft_bounce does
 * not apply (an administrator's bounce is meant).
 */
export function adminBouncerFor(config: PosternConfig, store: QueueStore, log: Logger, clock: () => number = Date.now): AdminBouncer {
  const recorder = new OutcomeRecorder({
    store,
    profiles: new BounceProfiles(config.bounce_profiles),
    softBounce: false,
    postmaster: config.postmaster ?? `postmaster@${config.hostname}`,
    hostname: config.hostname,
    clock: { ...systemClock, now: clock },
    random: Math.random,
    maxReturnedSize: config.delivery.dsn_max_returned_size,
    maxHeaderBytes: config.limits.max_header_size,
    log,
  });
  return new AdminBouncer(store, recorder, clock);
}

export class AdminBouncer {
  constructor(
    private readonly store: QueueStore,
    private readonly recorder: OutcomeRecorder,
    private readonly clock: () => number = Date.now,
  ) {}

  async bounce(id: QueueId, reason: string): Promise<AdminChange> {
    const now = this.clock();
    const before = this.store.getMessage(id);
    if (before === null) return 'not-found';
    if (before.state !== 'queued') return 'wrong-state';
    const lease = this.store.leaseMessage(id, `admin:${process.pid}`, now, ADMIN_LEASE_MS);
    if (lease === null) return 'busy';
    try {
      const msg = this.store.getMessage(id);
      if (msg === null) return 'not-found';
      const waiting = msg.recipients.map((r, index) => ({ r, index })).filter(({ r }) => r.state === 'queued');
      const results: RecipientResult[] = waiting.map(({ r, index }) => ({
        index,
        address: r.address,
        fact: { kind: 'local-failure', failure: 'bad-address', detail: reason },
        classification: {
          outcome: 'hard',
          status: '5.0.0',
          diagnostic: { type: 'X-Postern', text: reason },
          scope: 'message',
          rule: 'admin-bounce',
        },
        remoteMta: null,
        nextHop: null,
        at: now,
        dsnPassedOn: false,
        local: false,
      }));
      const attempts: AttemptRecord[] = waiting.length === 0 ? [] : [{
        at: now, recipients: waiting.map((w) => w.index), nextHop: 'admin', reply: reason, outcome: 'hard', status: '5.0.0',
      }];
      const r = await this.recorder.record(msg, lease, results, attempts);
      return r.applied ? 'changed' : 'busy';
    } catch (err) {
      try {
        this.store.releaseLease(lease);
      } catch {
        // It expires by itself.
      }
      throw err;
    }
  }
}
