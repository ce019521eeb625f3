/**
 * Prometheus metrics (prom-client), in a registry of their own per gateway (tests run several in
 * one process). The receiving side reports connections and replies through the SessionObserver
 * shape; the queue's tracking events (store.onTracked) drive the message counters, the replies
 * received from next hops and the delivery latency; DNS lookups come from the resolver's hook;
 * the queue depth is read from the store at each scrape.
 *
 * Leaf layer: knows neither the store nor the server, only the shapes it is handed.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The part of a tracking event the metrics read. */
export interface TrackedFact {
  readonly kind: string;
  readonly at: number;
  readonly outcome: string | null;
  readonly code: number | null;
  readonly detail: Readonly<Record<string, unknown>>;
}

export class PosternMetrics {
  readonly registry = new Registry();
  private readonly connections: Counter<'listener'>;
  private readonly activeConnections: Gauge<'listener'>;
  private readonly replies: Counter<'direction' | 'stage' | 'code' | 'class'>;
  private readonly messages: Counter<'outcome'>;
  private readonly latency: Histogram;
  private readonly dnsLookups: Counter<'type'>;
  private readonly dnsFailures: Counter<'type' | 'kind'>;
  /** Connections open now, all listeners. */
  openConnections = 0;

  constructor(
    queueDepth: () => Readonly<Record<string, number>>,
    /** The queue's group commit so far (fsyncs and the messages they made durable), or null. */
    commitStats: () => { readonly batches: number; readonly messages: number } | null = () => null,
  ) {
    const registers = [this.registry];
    this.connections = new Counter({ name: 'postern_connections_total', help: 'SMTP connections accepted by a listener', labelNames: ['listener'], registers });
    this.activeConnections = new Gauge({ name: 'postern_connections_active', help: 'SMTP connections open now', labelNames: ['listener'], registers });
    this.replies = new Counter({
      name: 'postern_smtp_replies_total',
      help: 'SMTP replies sent to clients (direction="sent", stage = the command answered) and received from next hops (direction="received", stage="DELIVERY")',
      labelNames: ['direction', 'stage', 'code', 'class'],
      registers,
    });
    this.messages = new Counter({
      name: 'postern_messages_total',
      help: 'Messages accepted, and recipients delivered, soft-bounced (deferred), hard-bounced, expired (soft turned hard)',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of ['accepted', 'delivered', 'soft', 'hard', 'expired']) this.messages.inc({ outcome }, 0);
    this.latency = new Histogram({
      name: 'postern_delivery_latency_seconds',
      help: 'From acceptance to delivery, per delivered recipient',
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers,
    });
    this.dnsLookups = new Counter({ name: 'postern_dns_lookups_total', help: 'DNS lookups sent (cache misses)', labelNames: ['type'], registers });
    this.dnsFailures = new Counter({ name: 'postern_dns_failures_total', help: 'DNS lookups that failed, by kind (nxdomain, nodata, temporary)', labelNames: ['type', 'kind'], registers });
    new Gauge({
      name: 'postern_queue_depth',
      help: 'Messages in the queue by state',
      labelNames: ['state'],
      registers,
      collect() {
        try {
          for (const [state, n] of Object.entries(queueDepth())) this.set({ state }, n);
        } catch {
          // A closed store has no depth; the scrape still answers.
        }
      },
    });
    // Messages per fsync (committed ÷ batches) says how well group commit batches under load.
    new Counter({
      name: 'postern_store_commit_fsyncs_total',
      help: 'Durability points (WAL fsyncs) of the queue\'s group commit',
      registers,
      collect() {
        const stats = commitStats();
        if (stats === null) return;
        this.reset();
        this.inc(stats.batches);
      },
    });
    new Counter({
      name: 'postern_store_committed_messages_total',
      help: 'Messages made durable by the queue\'s group commit',
      registers,
      collect() {
        const stats = commitStats();
        if (stats === null) return;
        this.reset();
        this.inc(stats.messages);
      },
    });
  }

  // ── SessionObserver ────────────────────────────────────────────────────────────────────────

  connectionOpened(listener: string): void {
    this.openConnections++;
    this.connections.inc({ listener });
    this.activeConnections.inc({ listener });
  }

  connectionClosed(listener: string): void {
    this.openConnections = Math.max(0, this.openConnections - 1);
    this.activeConnections.dec({ listener });
  }

  replied(stage: string, code: number): void {
    this.replies.inc({ direction: 'sent', stage, code: String(code), class: replyClass(code) });
  }

  // ── DNS ────────────────────────────────────────────────────────────────────────────────────

  dnsLookup(type: string, result: string): void {
    this.dnsLookups.inc({ type });
    if (result !== 'ok') this.dnsFailures.inc({ type, kind: result });
  }

  // ── tracking events ────────────────────────────────────────────────────────────────────────

  tracked(events: readonly TrackedFact[]): void {
    for (const e of events) {
      switch (e.kind) {
        case 'accepted':
          if (e.detail.origin === 'received') this.messages.inc({ outcome: 'accepted' });
          break;
        case 'delivered': {
          this.messages.inc({ outcome: 'delivered' });
          const receivedAt = Number(e.detail.receivedAt);
          if (Number.isFinite(receivedAt)) this.latency.observe(Math.max(0, (e.at - receivedAt) / 1000));
          break;
        }
        case 'deferred': this.messages.inc({ outcome: 'soft' }); break;
        case 'bounced': this.messages.inc({ outcome: 'hard' }); break;
        case 'expired': this.messages.inc({ outcome: 'expired' }); break;
        case 'attempt':
          if (e.code !== null) this.replies.inc({ direction: 'received', stage: 'DELIVERY', code: String(e.code), class: replyClass(e.code) });
          break;
        default:
          break;
      }
    }
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** "2xx", "soft" (4xx) or "hard" (5xx). */
function replyClass(code: number): string {
  if (code >= 500) return 'hard';
  if (code >= 400) return 'soft';
  return `${Math.floor(code / 100)}xx`;
}
