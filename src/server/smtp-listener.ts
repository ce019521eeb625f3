/**
 * SmtpListener: one listening socket from the config, its connections and their caps, and
 * graceful draining (421 4.3.2 to new connections and to the next command of open sessions;
 * messages in flight finish up to the grace deadline).
 */
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { TlsCredentials } from './tls-credentials.js';
import type { Authenticator } from './authenticator.js';
import type { Logger } from 'pino';
import { reply, type Reply } from '../smtp/reply.js';
import type { SessionLimits } from '../smtp/server/session-limits.js';
import type { BareLineEndingMode } from '../smtp/data-framing.js';
import type { PolicyEngine, SessionPolicy } from '../policy/session-policy.js';
import type { QueueStore } from '../store/queue-store.js';
import { Intake } from './intake.js';
import { SmtpConnection, type ConnectionTimeouts } from './smtp-connection.js';
import type { SessionObserver } from './session-observer.js';
import { nextSessionId } from './session-id.js';

export interface SmtpListenerOptions {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly hostname: string;
  readonly banner: string;
  /** Total connections on this listener; beyond it 421 4.7.0 at the greeting. */
  readonly maxConnections: number;
  readonly limits: Partial<SessionLimits>;
  readonly timeouts: ConnectionTimeouts;
  readonly bareLineEndings?: BareLineEndingMode;
  readonly store: QueueStore;
  readonly policy: PolicyEngine;
  readonly log: Logger;
  readonly clock: () => number;
  readonly version: string;
  /** none | starttls (RFC 3207) | implicit (RFC 8314). */
  readonly tls?: 'none' | 'starttls' | 'implicit';
  readonly tlsCredentials?: TlsCredentials | null;
  readonly requireTls?: boolean;
  /** none | optional | required (RFC 4954). */
  readonly auth?: 'none' | 'optional' | 'required';
  readonly authWithoutTls?: boolean;
  readonly authenticator?: Authenticator | null;
  readonly authFailureDelayMs?: number;
  readonly maxAuthFailures?: number;
  /** After AUTH, MAIL FROM must belong to the user (553 5.7.1); default true. */
  readonly senderLoginMatch?: boolean;
  /** Metrics: connections and replies. */
  readonly observer?: SessionObserver | null;
}

export class SmtpListener {
  private server: Server | TlsServer | null = null;
  private readonly connections = new Set<SmtpConnection>();
  /** Sockets accepted but whose session is not set up yet (policy lookup running). */
  private opening = 0;
  private readonly perIp = new Map<string, number>();
  /** While stopping: the sessions that were open when the stop began (new ones only get 421). */
  private draining: Set<SmtpConnection> | null = null;
  private drainedWaiters: Array<() => void> = [];

  constructor(private readonly opts: SmtpListenerOptions) {}

  get connectionCount(): number {
    return this.connections.size + this.opening;
  }

  async start(): Promise<AddressInfo> {
    const onConnection = (s: Socket): void => {
      this.accept(s).catch((err: unknown) => {
        this.opts.log.error({ err, listener: this.opts.name }, 'connection setup failed');
        s.destroy();
      });
    };
    let server: Server | TlsServer;
    if (this.opts.tls === 'implicit') {
      const credentials = this.opts.tlsCredentials?.options();
      if (!credentials) throw new Error(`listener ${this.opts.name}: implicit TLS needs a loaded certificate`);
      const tlsServer = createTlsServer({ ...credentials, handshakeTimeout: 30_000 }, (s) => {
        s.pause();
        onConnection(s);
      });
      tlsServer.on('tlsClientError', (err) => this.opts.log.debug({ listener: this.opts.name, err: err.message }, 'tls handshake failed'));
      this.opts.tlsCredentials?.onReload((o) => tlsServer.setSecureContext(o));
      server = tlsServer;
    } else {
      server = createServer({ pauseOnConnect: true }, onConnection);
    }
    server.maxConnections = this.opts.maxConnections * 2 + 16; // hard stop far above the polite 421
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    this.opts.log.info({ listener: this.opts.name, address: addr.address, port: addr.port }, 'listening');
    return addr;
  }

  private async accept(socket: Socket): Promise<void> {
    const ip = normalizeIp(socket.remoteAddress ?? '');
    const port = socket.remotePort ?? 0;
    const overLimit = this.connectionCount >= this.opts.maxConnections;
    const fromIp = (this.perIp.get(ip) ?? 0) + 1;
    this.perIp.set(ip, fromIp);
    this.opening++;
    let policy: SessionPolicy;
    try {
      policy = await this.opts.policy.openSession({ ip, port, listener: this.opts.name, connectionsFromIp: fromIp });
    } finally {
      this.opening--;
    }
    const sessionId = nextSessionId();
    const log = this.opts.log;
    const intake = new Intake({
      sessionId,
      hostname: this.opts.hostname,
      listener: this.opts.name,
      ip,
      port,
      store: this.opts.store,
      policy: this.draining
        ? withConnectReply(policy, reply('service.shutting-down', { hostname: this.opts.hostname }))
        : overLimit ? withConnectReply(policy, reply('connect.limit', { hostname: this.opts.hostname })) : policy,
      log,
      clock: this.opts.clock,
      status: () => this.statusLines(policy),
      tls: () => connRef?.tlsInfo ?? null,
      authenticator: this.opts.authenticator ?? null,
      authFailureDelayMs: this.opts.authFailureDelayMs,
      senderLoginMatch: this.opts.senderLoginMatch ?? true,
      maxHeaderBytes: this.opts.limits.maxHeaderBytes,
      observer: this.opts.observer ?? null,
    });
    let connRef: SmtpConnection | null = null;
    const implicit = this.opts.tls === 'implicit';
    const starttls = this.opts.tls === 'starttls';
    log.info({ session: sessionId, listener: this.opts.name, client: ip, port, sender_group: policy.senderGroup, policy: policy.policyName }, 'connect');
    const conn = new SmtpConnection(
      sessionId,
      socket,
      {
        hostname: this.opts.hostname,
        banner: this.opts.banner,
        clientName: `[${ip}]`,
        limits: { ...this.opts.limits, ...policy.limits },
        bareLineEndings: this.opts.bareLineEndings ?? 'reject',
        renderReply: policy.reply ? (id, vars, extra) => policy.reply!(id, vars, extra) : undefined,
        tlsAvailable: starttls,
        tlsActive: implicit,
        requireTls: this.opts.requireTls ?? false,
        authMechanisms: (this.opts.auth ?? 'none') === 'none' ? [] : ['PLAIN', 'LOGIN'],
        authRequiresTls: !(this.opts.authWithoutTls ?? false),
        requireAuth: this.opts.auth === 'required',
        maxAuthFailures: this.opts.maxAuthFailures,
      },
      intake,
      this.opts.timeouts,
      log,
      (c) => this.closed(c, ip),
      () => (starttls ? this.opts.tlsCredentials?.options() ?? null : null),
    );
    connRef = conn;
    if (implicit) {
      const t = socket as TLSSocket;
      conn.tlsInfo = { version: t.getProtocol() ?? 'TLS', cipher: t.getCipher()?.name ?? 'unknown' };
    }
    this.connections.add(conn);
    this.opts.observer?.connectionOpened?.(this.opts.name);
    socket.resume();
  }

  /** HELP STATUS: everybody sees host, version and state; trusted sender groups also the queue and connections. */
  private statusLines(policy: SessionPolicy): string[] {
    const lines = [`${this.opts.hostname} Postern ${this.opts.version}: ${this.draining ? 'draining, not accepting new mail' : 'accepting mail'}`];
    if (policy.trusted) {
      const counts = this.opts.store.counts();
      lines.push(`queue: ${counts.queued} queued, ${counts.held} held`);
      lines.push(`connections: ${this.connectionCount} on listener ${this.opts.name}`);
    }
    return lines;
  }

  private closed(c: SmtpConnection, ip: string): void {
    this.connections.delete(c);
    this.opts.observer?.connectionClosed?.(this.opts.name);
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
    this.opts.log.info({ session: c.id }, 'disconnect');
    this.draining?.delete(c);
    if (this.draining && this.draining.size === 0) {
      for (const w of this.drainedWaiters.splice(0)) w();
    }
  }

  /**
   * Stops the listener: new connections get 421 4.3.2, idle sessions get it now, sessions in a
   * transaction at their next command; after `graceMs` everything left is closed with 421 4.3.2.
   */
  async shutdown(graceMs: number): Promise<void> {
    const draining = new Set(this.connections);
    this.draining = draining;
    for (const c of draining) c.shutdown(false);
    if (draining.size > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.drainedWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    for (const c of this.connections) {
      draining.add(c);
      c.shutdown(true);
    }
    if (draining.size > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        this.drainedWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The listener's own refusals (connection cap, draining) answer before the policy: 421 and close. */
function withConnectReply(policy: SessionPolicy, r: Reply): SessionPolicy {
  return {
    senderGroup: policy.senderGroup,
    policyName: policy.policyName,
    limits: policy.limits,
    get rdns() {
      return policy.rdns;
    },
    trusted: policy.trusted,
    reply: policy.reply ? (id, vars, extra) => policy.reply!(id, vars, extra) : undefined,
    connect: () => ({ kind: 'reject', reply: r, disconnect: true }),
    helo: (verb, domain) => policy.helo(verb, domain),
    mail: (f) => policy.mail(f),
    rcpt: (f) => policy.rcpt(f),
  };
}

/** "::ffff:127.0.0.1" (an IPv4 client on a dual-stack socket) → "127.0.0.1". */
function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
