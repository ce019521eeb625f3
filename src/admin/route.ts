/** The shape of an admin API route: method, path pattern, handler; one file per area and version. */
import type { QueueAdmin } from './queue-admin.js';

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface RouteContext {
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The parsed JSON body (POST), or undefined. */
  readonly body: unknown;
  readonly admin: QueueAdmin;
}

export interface RouteAnswer {
  readonly status?: number;
  readonly json: unknown;
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** "/api/v1/queue/:id/:action" — `:name` matches one path segment. */
  readonly path: string;
  readonly handle: (ctx: RouteContext) => RouteAnswer | Promise<RouteAnswer>;
}

/** Compiles "/a/:b" into a matcher returning the params, or null. */
export function compilePath(path: string): (pathname: string) => Record<string, string> | null {
  const names: string[] = [];
  const re = new RegExp(`^${path.replace(/:([a-z_]+)/g, (_, n: string) => {
    names.push(n);
    return '([^/]+)';
  })}/?$`);
  return (pathname) => {
    const m = re.exec(pathname);
    if (!m) return null;
    const params: Record<string, string> = {};
    names.forEach((n, i) => {
      params[n] = decodeURIComponent(m[i + 1]);
    });
    return params;
  };
}

/** A query parameter as a duration in ms: "90" (seconds), "15m", "2h", "1d". */
export function durationParam(value: string | null, name: string): number | undefined {
  if (value === null || value === '') return undefined;
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new HttpError(400, 'bad-parameter', `${name}: expected a duration like 90s, 15m, 2h or 1d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** A time parameter: ms since the epoch, or an ISO 8601 date. */
export function timeParam(value: string | null, name: string): number | undefined {
  if (value === null || value === '') return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n)) throw new HttpError(400, 'bad-parameter', `${name}: expected a time (ISO 8601 or ms since the epoch)`);
  return n;
}

export function intParam(value: string | null, name: string, max: number): number | undefined {
  if (value === null || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new HttpError(400, 'bad-parameter', `${name}: expected a whole number`);
  return Math.min(Number(value), max);
}
