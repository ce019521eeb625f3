/**
 * Outbound connections, kept for reuse and limited per destination. A destination is what a
 * limit applies to — a domain's MX hosts, or a relay's next hop: at most
 * `maxPerDestination` connections to it at once (the rest wait their turn), each used for at most
 * `maxMessagesPerConnection` transactions, and kept idle for `idleMs` for the next message to the
 * same host (Postfix's connection cache). QUIT is sent when an idle connection times out or the
 * pool closes.
 */
import type { Logger } from 'pino';
import { SmtpClientConnection, type ConnectorOptions, type OpenResult, type SmtpTarget } from './smtp-connector.js';

export interface ConnectionPoolOptions {
  readonly connector: ConnectorOptions;
  readonly maxPerDestination: number;
  readonly maxMessagesPerConnection: number;
  readonly idleMs: number;
  readonly log: Logger;
  /** Opens a connection (tests may count or fake it). */
  readonly open?: (target: SmtpTarget, opts: ConnectorOptions) => Promise<OpenResult>;
}

interface Idle {
  readonly connection: SmtpClientConnection;
  readonly timer: NodeJS.Timeout;
}

interface Destination {
  /** Connections open or opening, busy or idle. */
  count: number;
  readonly idle: Map<string, Idle[]>;
  readonly waiters: Array<() => void>;
}

/** A connection on loan from the pool; give it back with `release`. */
export interface PooledConnection {
  readonly connection: SmtpClientConnection;
  readonly destination: string;
  readonly reused: boolean;
}

export type AcquireResult =
  | { readonly ok: true; readonly pooled: PooledConnection }
  | Extract<OpenResult, { ok: false }>;

function targetKey(t: SmtpTarget): string {
  return `${t.protocol}:${t.ip}:${t.port}:${t.tls}:${t.host}`;
}

export class ConnectionPool {
  private readonly destinations = new Map<string, Destination>();
  private closing = false;
  /** Connections opened over the pool's life (for tests and metrics). */
  opened = 0;

  constructor(private readonly opts: ConnectionPoolOptions) {}

  private destination(key: string): Destination {
    let d = this.destinations.get(key);
    if (!d) {
      d = { count: 0, idle: new Map(), waiters: [] };
      this.destinations.set(key, d);
    }
    return d;
  }

  /** A ready connection to `target`, reused when one is idle; waits while the destination is at its limit. */
  async acquire(destination: string, target: SmtpTarget, signal?: AbortSignal): Promise<AcquireResult> {
    const d = this.destination(destination);
    const key = targetKey(target);
    for (;;) {
      if (this.closing || signal?.aborted) {
        return { ok: false, fact: { kind: 'session', failure: { kind: 'connection-lost', command: null, detail: 'delivery is shutting down' }, host: target.host } };
      }
      const idle = this.takeIdle(d, key);
      if (idle) return { ok: true, pooled: { connection: idle, destination, reused: true } };
      if (d.count < this.opts.maxPerDestination) break;
      // At the limit: an idle connection to another host of this destination makes room once it has quit.
      this.closeOneIdle(d);
      await new Promise<void>((resolve) => {
        d.waiters.push(resolve);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    d.count++;
    this.opened++;
    let result: OpenResult;
    try {
      result = await (this.opts.open ?? SmtpClientConnection.open)(target, this.opts.connector);
    } catch (err) {
      result = { ok: false, fact: { kind: 'connect', failure: 'other', host: target.host, detail: String(err) } };
    }
    if (!result.ok) {
      this.gone(d);
      return result;
    }
    return { ok: true, pooled: { connection: result.connection, destination, reused: false } };
  }

  /** Gives a connection back: kept idle when it can take more, else closed with QUIT. */
  release(pooled: PooledConnection): void {
    const d = this.destination(pooled.destination);
    const c = pooled.connection;
    const reusable = !this.closing && c.usable && c.messages < this.opts.maxMessagesPerConnection && this.opts.idleMs > 0;
    if (!reusable) {
      void c.quit().finally(() => this.gone(d));
      return;
    }
    const key = targetKey(c.target);
    const timer = setTimeout(() => {
      const list = d.idle.get(key);
      const i = list?.findIndex((x) => x.connection === c) ?? -1;
      if (list && i >= 0) {
        list.splice(i, 1);
        void c.quit().finally(() => this.gone(d));
      }
    }, this.opts.idleMs);
    timer.unref();
    const list = d.idle.get(key) ?? [];
    list.push({ connection: c, timer });
    d.idle.set(key, list);
    this.wake(d);
  }

  /** Closes every idle connection (QUIT) and refuses new ones; busy ones are closed by their users. */
  async close(): Promise<void> {
    this.closing = true;
    const quits: Promise<void>[] = [];
    for (const d of this.destinations.values()) {
      for (const list of d.idle.values()) {
        for (const { connection, timer } of list) {
          clearTimeout(timer);
          quits.push(connection.quit().finally(() => this.gone(d)));
        }
        list.length = 0;
      }
      for (const w of d.waiters.splice(0)) w();
    }
    await Promise.all(quits);
  }

  private takeIdle(d: Destination, key: string): SmtpClientConnection | null {
    const list = d.idle.get(key);
    while (list && list.length > 0) {
      const { connection, timer } = list.shift() as Idle;
      clearTimeout(timer);
      if (connection.usable) return connection;
      void connection.quit().finally(() => this.gone(d));
    }
    return null;
  }

  private closeOneIdle(d: Destination): boolean {
    for (const list of d.idle.values()) {
      const idle = list.shift();
      if (idle) {
        clearTimeout(idle.timer);
        void idle.connection.quit().finally(() => this.gone(d));
        return true;
      }
    }
    return false;
  }

  /** One connection of `d` is closed: its slot goes to the next waiter. */
  private gone(d: Destination): void {
    d.count = Math.max(0, d.count - 1);
    this.wake(d);
  }

  private wake(d: Destination): void {
    d.waiters.shift()?.();
  }
}
