/**
 * /api/v1/queue — list, show, and the actions retry, hold, release, bounce, delete: on one
 * message (POST /api/v1/queue/:id/:action, DELETE /api/v1/queue/:id) or on many
 * (POST /api/v1/queue/:action with {"ids": […]}, {"domain": "…"} or {"all": true}).
 */
import type { AdminChange } from '../../store/admin-change.js';
import type { MessageState } from '../../store/queue-types.js';
import { QUEUE_ACTIONS, type QueueAction, type QueueAdmin } from '../queue-admin.js';
import { durationParam, HttpError, intParam, type Route, type RouteAnswer } from '../route.js';

const STATES: readonly MessageState[] = ['queued', 'held', 'done'];

/** HTTP status of a one-message change. */
const CHANGE_STATUS: Readonly<Record<AdminChange, number>> = { changed: 200, 'not-found': 404, busy: 409, 'wrong-state': 409 };

function action(name: string): QueueAction {
  if (!(QUEUE_ACTIONS as readonly string[]).includes(name)) {
    throw new HttpError(404, 'unknown-action', `unknown action "${name}"; one of ${QUEUE_ACTIONS.join(', ')}`);
  }
  return name as QueueAction;
}

async function one(admin: QueueAdmin, a: QueueAction, id: string): Promise<RouteAnswer> {
  const result = await admin.act(a, id);
  return { status: CHANGE_STATUS[result], json: { id, action: a, result } };
}

export const queueRoutesV1: readonly Route[] = [
  {
    method: 'GET',
    path: '/api/v1/queue',
    handle: ({ query, admin }) => {
      const state = query.get('state') || undefined;
      if (state !== undefined && !(STATES as readonly string[]).includes(state)) {
        throw new HttpError(400, 'bad-parameter', `state: one of ${STATES.join(', ')}`);
      }
      const messages = admin.list({
        state: state as MessageState | undefined,
        domain: query.get('domain') || undefined,
        olderThanMs: durationParam(query.get('older_than'), 'older_than'),
        limit: intParam(query.get('limit'), 'limit', 10_000),
      });
      return { json: { now: admin.now(), messages } };
    },
  },
  {
    method: 'GET',
    path: '/api/v1/queue/:id',
    handle: ({ params, admin }) => {
      const message = admin.show(params.id);
      if (message === null) throw new HttpError(404, 'not-found', `no message ${params.id}`);
      return { json: { message } };
    },
  },
  {
    method: 'DELETE',
    path: '/api/v1/queue/:id',
    handle: ({ params, admin }) => one(admin, 'delete', params.id),
  },
  {
    method: 'POST',
    path: '/api/v1/queue/:id/:action',
    handle: ({ params, admin }) => one(admin, action(params.action), params.id),
  },
  {
    method: 'POST',
    path: '/api/v1/queue/:action',
    handle: async ({ params, body, admin }) => {
      const a = action(params.action);
      const b = (typeof body === 'object' && body !== null ? body : {}) as { ids?: unknown; domain?: unknown; all?: unknown };
      let ids: string[];
      if (Array.isArray(b.ids) && b.ids.every((x) => typeof x === 'string')) ids = b.ids as string[];
      else if (typeof b.domain === 'string' && b.domain !== '') ids = admin.targets(a, { domain: b.domain });
      else if (b.all === true) ids = admin.targets(a, { all: true });
      else throw new HttpError(400, 'bad-body', 'expected {"ids": [...]}, {"domain": "..."} or {"all": true}');
      const results = await admin.actOnMany(a, ids);
      return { json: { action: a, total: results.length, changed: results.filter((r) => r.result === 'changed').length, results } };
    },
  },
];
