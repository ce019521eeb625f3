/**
 * /api/v1/track — message search and timelines (by queue id, Message-ID header, sender,
 * recipient, next hop, outcome, time range), and /api/v1/track/bounces — destinations ranked by
 * soft and hard bounces with the replies they gave.
 */
import { SEARCH_OUTCOMES, type SearchOutcome, type TrackingSearch } from '../../store/tracking-record.js';
import { durationParam, HttpError, intParam, timeParam, type Route } from '../route.js';

/** Query parameters → a tracking search; at least one condition. */
export function searchFromQuery(query: URLSearchParams): TrackingSearch {
  const outcome = query.get('outcome') || undefined;
  if (outcome !== undefined && !(SEARCH_OUTCOMES as readonly string[]).includes(outcome)) {
    throw new HttpError(400, 'bad-parameter', `outcome: one of ${SEARCH_OUTCOMES.join(', ')}`);
  }
  const text = (name: string): string | undefined => query.get(name)?.trim() || undefined;
  return {
    queueId: text('queue_id'),
    messageId: text('message_id'),
    sender: query.has('sender') ? (query.get('sender') ?? '').trim() : undefined,
    recipient: text('recipient'),
    nextHop: text('next_hop'),
    outcome: outcome as SearchOutcome | undefined,
    since: timeParam(query.get('since'), 'since'),
    until: timeParam(query.get('until'), 'until'),
    limit: intParam(query.get('limit'), 'limit', 1000) ?? 100,
  };
}

export const trackRoutesV1: readonly Route[] = [
  {
    method: 'GET',
    path: '/api/v1/track',
    handle: ({ query, admin }) => ({ json: admin.track(searchFromQuery(query)) }),
  },
  {
    method: 'GET',
    path: '/api/v1/track/bounces',
    handle: ({ query, admin }) => {
      const windowMs = durationParam(query.get('window'), 'window') ?? 86_400_000;
      const now = admin.now();
      return { json: { since: now - windowMs, destinations: admin.tracking.bounces(now - windowMs, intParam(query.get('limit'), 'limit', 500) ?? 50) } };
    },
  },
];
