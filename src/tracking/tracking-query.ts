/**
 * Message tracking: "where is this message, and why did it bounce?" answered from the store's
 * tracking records. Finds messages by queue id, Message-ID header, sender, recipient, next hop,
 * outcome and time; gives each one's timeline from the connection to the final outcome; sums
 * events into per-minute series and a bounce report for the dashboard and `postern status`.
 *
 * Reads only: the store writes the records, in the transactions of the changes they describe.
 */
import type { QueueStore } from '../store/queue-store.js';
import type { MessageState, QueueId, QueuedMessage, RecipientState } from '../store/queue-types.js';
import type { BounceSummary, TrackingEvent, TrackingSearch } from '../store/tracking-record.js';

export interface TrackedRecipient {
  readonly address: string;
  readonly state: RecipientState;
  /** 'deferred' while queued after a failed attempt. */
  readonly display: RecipientState | 'deferred';
  readonly attempts: number;
  readonly lastReply: string | null;
  readonly status: string | null;
  readonly nextAttemptAt: number | null;
}

/** One message as tracking shows it: envelope, per-recipient state, the reply behind each outcome. */
export interface TrackedMessage {
  readonly id: QueueId;
  readonly state: MessageState;
  /** What a person reads first: delivered, deferred, bounced, expired, deleted, held, queued, partly … */
  readonly summary: string;
  readonly sender: string;
  readonly receivedAt: number;
  readonly size: number;
  readonly messageId: string | null;
  readonly origin: string;
  readonly client: { readonly ip: string; readonly helo: string; readonly senderGroup: string | null; readonly policy: string | null };
  readonly attempts: number;
  readonly nextAttemptAt: number | null;
  readonly recipients: readonly TrackedRecipient[];
}

export interface TrackedMessageWithTimeline extends TrackedMessage {
  readonly timeline: readonly TrackingEvent[];
}

export interface TrackResult {
  readonly messages: readonly TrackedMessageWithTimeline[];
  /** Refused before queueing (connection or RCPT rejected): there is no message to show. */
  readonly refusals: readonly TrackingEvent[];
}

/** Per-bucket series for charts (index i is bucket start[i]). */
export interface OverviewSeries {
  readonly bucketMs: number;
  readonly start: readonly number[];
  readonly connections: readonly number[];
  readonly accepted: readonly number[];
  readonly delivered: readonly number[];
  /** Recipient outcomes. */
  readonly soft: readonly number[];
  readonly hard: readonly number[];
  /** Replies sent by us (greeting, RCPT) and received from next hops, by class. */
  readonly sentSoft: readonly number[];
  readonly sentHard: readonly number[];
  readonly receivedSoft: readonly number[];
  readonly receivedHard: readonly number[];
}

export interface Rates {
  /** Per minute, averaged over the window. */
  readonly windowMs: number;
  readonly connections: number;
  readonly accepted: number;
  readonly delivered: number;
  readonly soft: number;
  readonly hard: number;
}

function displayState(r: { state: RecipientState; attempts: number }): TrackedRecipient['display'] {
  return r.state === 'queued' && r.attempts > 0 ? 'deferred' : r.state;
}

/** One word for the whole message: the recipients' common state, or "partly …" when they differ. */
function summarize(m: QueuedMessage): string {
  if (m.state === 'held') return 'held';
  const states = [...new Set(m.recipients.map(displayState))];
  if (states.length === 1) return states[0];
  const order: TrackedRecipient['display'][] = ['deferred', 'queued', 'bounced', 'expired', 'deleted', 'delivered'];
  const worst = order.find((s) => states.includes(s)) ?? states[0];
  return `partly ${worst}`;
}

export class TrackingQuery {
  constructor(private readonly store: QueueStore) {}

  /** The message as tracking shows it, or null. */
  message(id: QueueId): TrackedMessage | null {
    const m = this.store.getMessage(id);
    return m === null ? null : this.describe(m);
  }

  describe(m: QueuedMessage): TrackedMessage {
    return {
      id: m.id,
      state: m.state,
      summary: summarize(m),
      sender: m.envelope.sender,
      receivedAt: m.envelope.receivedAt,
      size: m.size,
      messageId: null,
      origin: m.origin,
      client: { ip: m.envelope.client.ip, helo: m.envelope.client.helo, senderGroup: m.envelope.client.senderGroup, policy: m.envelope.client.policy },
      attempts: m.attempts,
      nextAttemptAt: m.state === 'queued' ? m.nextAttemptAt : null,
      recipients: m.recipients.map((r) => ({
        address: r.address,
        state: r.state,
        display: displayState(r),
        attempts: r.attempts,
        lastReply: r.lastReply,
        status: r.status,
        nextAttemptAt: r.state === 'queued' ? r.nextAttemptAt : null,
      })),
    };
  }

  /** A message with its whole timeline (connection → outcome), or null. */
  timeline(id: QueueId): TrackedMessageWithTimeline | null {
    const m = this.store.getMessage(id);
    if (m === null) return null;
    const timeline = this.store.messageEvents(id);
    const accepted = timeline.find((e) => e.kind === 'accepted');
    const messageId = typeof accepted?.detail.messageId === 'string' ? accepted.detail.messageId : null;
    return { ...this.describe(m), messageId, timeline };
  }

  /** Messages matching the search, newest first, each with its timeline; and refusals before queueing. */
  find(search: TrackingSearch): TrackResult {
    const ids = this.store.searchMessages(search);
    const messages = ids.map((id) => this.timeline(id)).filter((m): m is TrackedMessageWithTimeline => m !== null);
    return { messages, refusals: this.store.searchRefusals(search) };
  }

  /** Per-bucket series over [now - windowMs, now). */
  overview(now: number, windowMs: number, bucketMs: number): OverviewSeries {
    const first = Math.floor((now - windowMs) / bucketMs) * bucketMs;
    const n = Math.max(1, Math.ceil((now - first) / bucketMs));
    const start = Array.from({ length: n }, (_, i) => first + i * bucketMs);
    const series = () => new Array<number>(n).fill(0);
    const s = {
      connections: series(), accepted: series(), delivered: series(), soft: series(), hard: series(),
      sentSoft: series(), sentHard: series(), receivedSoft: series(), receivedHard: series(),
    };
    for (const c of this.store.trackingCounts(first, bucketMs)) {
      const i = Math.floor((c.bucket - first) / bucketMs);
      if (i < 0 || i >= n) continue;
      switch (c.kind) {
        case 'connection':
          s.connections[i] += c.count;
          break;
        case 'accepted':
          if (c.outcome === 'accepted') s.accepted[i] += c.count;
          break;
        case 'delivered': s.delivered[i] += c.count; break;
        case 'deferred': s.soft[i] += c.count; break;
        case 'bounced':
        case 'expired':
          s.hard[i] += c.count;
          break;
        default: break;
      }
      if (c.kind === 'connection' || c.kind === 'rcpt') {
        if (c.codeClass === 4) s.sentSoft[i] += c.count;
        if (c.codeClass === 5) s.sentHard[i] += c.count;
      } else if (c.kind === 'attempt') {
        if (c.codeClass === 4) s.receivedSoft[i] += c.count;
        if (c.codeClass === 5) s.receivedHard[i] += c.count;
      }
    }
    return { bucketMs, start, ...s };
  }

  /** Averages per minute over the last `windowMs`. */
  rates(now: number, windowMs = 5 * 60_000): Rates {
    const o = this.overview(now, windowMs, windowMs);
    const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0);
    const perMinute = (a: readonly number[]): number => Math.round((sum(a) / (windowMs / 60_000)) * 100) / 100;
    return {
      windowMs,
      connections: perMinute(o.connections),
      accepted: perMinute(o.accepted),
      delivered: perMinute(o.delivered),
      soft: perMinute(o.soft),
      hard: perMinute(o.hard),
    };
  }

  /** Destinations ranked by bounces since `since`, with the replies they gave. */
  bounces(since: number, limit = 50): BounceSummary[] {
    return this.store.bounceSummary(since, limit);
  }
}
