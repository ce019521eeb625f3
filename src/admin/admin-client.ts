/**
 * The CLI's way to the queue service: over the running gateway's admin API (HttpAdminClient),
 * or, when no gateway runs, on the store directly through the same QueueAdmin
 * (LocalAdminClient). Either way the commands see one interface and the same answers.
 */
import type { AdminChange } from '../store/admin-change.js';
import type { QueueId } from '../store/queue-types.js';
import type { TrackingSearch } from '../store/tracking-record.js';
import type { TrackedMessage, TrackedMessageWithTimeline, TrackResult } from '../tracking/tracking-query.js';
import type { ListFilter, QueueAction, QueueAdmin, StatusReport } from './queue-admin.js';

export interface AdminClient {
  /** "api http://127.0.0.1:8025" or "store ./var/queue": where the answers come from. */
  readonly via: string;
  list(filter: ListFilter): Promise<TrackedMessage[]>;
  show(id: QueueId): Promise<TrackedMessageWithTimeline | null>;
  act(action: QueueAction, id: QueueId): Promise<AdminChange>;
  /** Ids a bulk action over a domain or everything applies to. */
  targets(action: QueueAction, target: { domain?: string; all?: boolean }): Promise<QueueId[]>;
  track(search: TrackingSearch): Promise<TrackResult>;
  status(): Promise<StatusReport>;
  close(): Promise<void>;
}

export class LocalAdminClient implements AdminClient {
  constructor(
    readonly via: string,
    private readonly admin: QueueAdmin,
    private readonly onClose: () => Promise<void>,
  ) {}

  async list(filter: ListFilter): Promise<TrackedMessage[]> {
    return this.admin.list(filter);
  }

  async show(id: QueueId): Promise<TrackedMessageWithTimeline | null> {
    return this.admin.show(id);
  }

  act(action: QueueAction, id: QueueId): Promise<AdminChange> {
    return this.admin.act(action, id);
  }

  async targets(action: QueueAction, target: { domain?: string; all?: boolean }): Promise<QueueId[]> {
    return this.admin.targets(action, target);
  }

  async track(search: TrackingSearch): Promise<TrackResult> {
    return this.admin.track(search);
  }

  async status(): Promise<StatusReport> {
    return this.admin.status();
  }

  close(): Promise<void> {
    return this.onClose();
  }
}

export class AdminApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'AdminApiError';
  }
}

export class HttpAdminClient implements AdminClient {
  readonly via: string;

  constructor(private readonly base: string, private readonly token: string) {
    this.via = `api ${base}`;
  }

  private async request<T>(method: string, path: string, body?: unknown, okStatuses: readonly number[] = [200]): Promise<{ status: number; json: T }> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const json = (await res.json().catch(() => ({}))) as T & { error?: { message?: string } };
    if (!okStatuses.includes(res.status)) {
      throw new AdminApiError(res.status, `${method} ${path}: ${res.status} ${json.error?.message ?? res.statusText}`);
    }
    return { status: res.status, json };
  }

  async list(filter: ListFilter): Promise<TrackedMessage[]> {
    const q = new URLSearchParams();
    if (filter.state) q.set('state', filter.state);
    if (filter.domain) q.set('domain', filter.domain);
    if (filter.olderThanMs !== undefined) q.set('older_than', `${filter.olderThanMs}ms`);
    if (filter.limit !== undefined) q.set('limit', String(filter.limit));
    return (await this.request<{ messages: TrackedMessage[] }>('GET', `/api/v1/queue?${q}`)).json.messages;
  }

  async show(id: QueueId): Promise<TrackedMessageWithTimeline | null> {
    const r = await this.request<{ message?: TrackedMessageWithTimeline }>('GET', `/api/v1/queue/${encodeURIComponent(id)}`, undefined, [200, 404]);
    return r.status === 404 ? null : (r.json.message ?? null);
  }

  async act(action: QueueAction, id: QueueId): Promise<AdminChange> {
    const r = await this.request<{ result: AdminChange }>('POST', `/api/v1/queue/${encodeURIComponent(id)}/${action}`, undefined, [200, 404, 409]);
    return r.json.result;
  }

  async targets(action: QueueAction, target: { domain?: string; all?: boolean }): Promise<QueueId[]> {
    if (target.domain === undefined && target.all !== true) return [];
    const states = action === 'release' ? ['held'] : action === 'delete' ? ['queued', 'held'] : ['queued'];
    const ids: QueueId[] = [];
    for (const state of states) {
      const q = new URLSearchParams({ state, limit: '10000' });
      if (target.domain) q.set('domain', target.domain);
      const r = await this.request<{ messages: TrackedMessage[] }>('GET', `/api/v1/queue?${q}`);
      ids.push(...r.json.messages.map((m) => m.id));
    }
    return ids;
  }

  async track(search: TrackingSearch): Promise<TrackResult> {
    const q = new URLSearchParams();
    const put = (k: string, v: string | number | undefined): void => {
      if (v !== undefined) q.set(k, String(v));
    };
    put('queue_id', search.queueId);
    put('message_id', search.messageId);
    put('sender', search.sender);
    put('recipient', search.recipient);
    put('next_hop', search.nextHop);
    put('outcome', search.outcome);
    put('since', search.since);
    put('until', search.until);
    put('limit', search.limit);
    return (await this.request<TrackResult>('GET', `/api/v1/track?${q}`)).json;
  }

  async status(): Promise<StatusReport> {
    return (await this.request<StatusReport>('GET', '/api/v1/status')).json;
  }

  async close(): Promise<void> {
    // Nothing held open: each request is its own.
  }
}
