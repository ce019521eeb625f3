/**
 * One outbound connection: a socket ⇄ a ClientSession. It connects (with a connect timeout),
 * upgrades to TLS when the session asks (node:tls; certificate checks per config; an
 * opportunistic route whose handshake fails is retried in plaintext, as Postfix does), streams
 * bodies from the store with backpressure, and keeps the RFC 5321 §4.5.3.2 timeout the session
 * says applies — per command, and per block while the body is written.
 *
 * Failures come back as delivery facts (connect refused, timed out…) or as the session's own
 * transaction outcomes; nothing here decides soft or hard.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { ConnectFailureKind, DeliveryFact } from '../bounce/delivery-fact.js';
import { ClientSession, type ClientTlsMode } from '../smtp/client/client-session.js';
import { NEED_DATA, type ClientEvent, type ClientTimeoutKind, type SessionFailure, type TransactionRequest } from '../smtp/client/client-events.js';
import type { EhloExtensions } from '../smtp/client/ehlo-extensions.js';
import type { TransactionOutcome } from '../smtp/client/rcpt-outcomes.js';
import { formatServerReply } from '../smtp/reply-parser.js';

export interface SmtpTarget {
  /** The host's name (MX exchange or route host): logs, Remote-MTA, TLS server name. */
  readonly host: string;
  readonly ip: string;
  readonly port: number;
  readonly protocol: 'smtp' | 'lmtp';
  readonly tls: ClientTlsMode;
}

export type ClientTimeouts = Readonly<Record<ClientTimeoutKind | 'connect', number>>;

export interface ConnectorOptions {
  readonly heloName: string;
  readonly timeouts: ClientTimeouts;
  /** Check the server's certificate and name. */
  readonly tlsVerify: boolean;
  readonly log: Logger;
}

export type OpenResult =
  | { readonly ok: true; readonly connection: SmtpClientConnection }
  | { readonly ok: false; readonly fact: DeliveryFact };

/** "mx.example.test[192.0.2.1]:25" */
export function targetLabel(t: Pick<SmtpTarget, 'host' | 'ip' | 'port'>): string {
  return `${t.host}[${t.ip}]:${t.port}`;
}

function connectFailureKind(code: string | undefined): ConnectFailureKind {
  switch (code) {
    case 'ECONNREFUSED': return 'refused';
    case 'ETIMEDOUT': return 'timeout';
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'EADDRNOTAVAIL': return 'unreachable';
    case 'ECONNRESET':
    case 'EPIPE': return 'reset';
    default: return 'other';
  }
}

export class SmtpClientConnection {
  readonly label: string;
  /** Transactions started on this connection. */
  messages = 0;
  private socket: net.Socket;
  private readonly session: ClientSession;
  private timer: NodeJS.Timeout | null = null;
  private streaming = false;
  private body: (() => AsyncIterable<Uint8Array>) | null = null;
  private opening: ((r: OpenResult) => void) | null = null;
  private transaction: ((o: TransactionOutcome) => void) | null = null;
  private closed = false;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;
  /** The failure that ended the session, if one did. */
  failure: SessionFailure | null = null;

  private constructor(
    readonly target: SmtpTarget,
    private readonly opts: ConnectorOptions,
    socket: net.Socket,
  ) {
    this.label = targetLabel(target);
    this.socket = socket;
    this.session = new ClientSession({ heloName: opts.heloName, protocol: target.protocol, tls: target.tls });
    this.closedPromise = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /**
   * Connects and runs the session up to 'ready' (greeting, EHLO, STARTTLS). An opportunistic
   * route whose TLS handshake fails is tried once more without TLS.
   */
  static async open(target: SmtpTarget, opts: ConnectorOptions): Promise<OpenResult> {
    const first = await SmtpClientConnection.openOnce(target, opts);
    if (!first.ok && target.tls === 'opportunistic' && first.fact.kind === 'session' && first.fact.failure.kind === 'tls-failed') {
      opts.log.info({ host: targetLabel(target), reason: first.fact.failure.detail }, 'delivery: TLS handshake failed; trying without TLS');
      return SmtpClientConnection.openOnce({ ...target, tls: 'none' }, opts);
    }
    return first;
  }

  private static openOnce(target: SmtpTarget, opts: ConnectorOptions): Promise<OpenResult> {
    return new Promise((resolve) => {
      const label = targetLabel(target);
      const socket = net.connect({ host: target.ip, port: target.port });
      const fail = (failure: ConnectFailureKind, detail: string): void => {
        clearTimeout(timer);
        socket.removeListener('error', onError);
        socket.destroy();
        resolve({ ok: false, fact: { kind: 'connect', failure, host: label, detail } });
      };
      const onError = (err: NodeJS.ErrnoException): void => fail(connectFailureKind(err.code), err.code ?? err.message);
      const timer = setTimeout(() => fail('timeout', `no connection within ${opts.timeouts.connect} ms`), opts.timeouts.connect);
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', onError);
        socket.setNoDelay(true);
        const c = new SmtpClientConnection(target, opts, socket);
        c.opening = resolve;
        c.attach(socket);
        c.pump();
      });
    });
  }

  /** Extensions of the server (after EHLO). */
  get extensions(): EhloExtensions {
    return this.session.extensions;
  }

  get isTls(): boolean {
    return this.session.isTls;
  }

  /** Ready for another transaction. */
  get usable(): boolean {
    return !this.closed && this.session.isReady && this.transaction === null;
  }

  /** Runs one mail transaction; the body is read only after the server said 354. */
  send(request: TransactionRequest, body: () => AsyncIterable<Uint8Array>): Promise<TransactionOutcome> {
    if (!this.usable) throw new Error(`${this.label}: connection not ready for a transaction`);
    this.messages++;
    return new Promise((resolve) => {
      this.transaction = resolve;
      this.body = body;
      this.session.startTransaction(request);
      this.pump();
    });
  }

  /** QUIT, then close; resolves when the socket is closed (destroyed after the QUIT timeout). */
  quit(): Promise<void> {
    if (this.closed) return this.closedPromise;
    if (this.session.isReady) {
      this.session.quit();
      this.pump();
      const t = setTimeout(() => this.destroy(), this.opts.timeouts.quit);
      t.unref();
    } else {
      this.destroy();
    }
    return this.closedPromise;
  }

  destroy(): void {
    this.socket.destroy();
    this.onGone('closed by the client');
  }

  // ── Internals ──────────────────────────────────────────────────────────────────────────────

  private attach(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.session.receiveData(d);
      this.pump();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.onGone(err.code ?? err.message));
    socket.on('close', () => this.onGone('connection closed by the server'));
  }

  private onGone(detail: string): void {
    if (this.closed) return;
    this.session.connectionLost(detail);
    this.pump();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    if (!this.socket.destroyed) {
      this.socket.end();
      const t = setTimeout(() => this.socket.destroy(), 2000);
      t.unref();
    }
    // Whoever still waits gets an answer.
    this.opening?.({ ok: false, fact: { kind: 'session', failure: this.failure ?? { kind: 'connection-lost', command: null, detail: 'closed' }, host: this.label } });
    this.opening = null;
    // Closed means closed: a connection counts against its destination until the socket is gone.
    if (this.socket.destroyed) this.resolveClosed();
    else this.socket.once('close', () => this.resolveClosed());
  }

  private pump(): void {
    for (;;) {
      const e = this.session.nextEvent();
      if (e === NEED_DATA) break;
      this.handle(e);
    }
    this.flush();
    this.armTimer();
  }

  private handle(e: ClientEvent): void {
    switch (e.type) {
      case 'reply':
        this.opts.log.trace({ host: this.label, command: e.command, reply: formatServerReply(e.reply) }, 'delivery: reply');
        return;
      case 'ready': {
        const open = this.opening;
        this.opening = null;
        open?.({ ok: true, connection: this });
        return;
      }
      case 'start-tls':
        this.startTls();
        return;
      case 'send-body':
        void this.streamBody();
        return;
      case 'transaction-done': {
        const done = this.transaction;
        this.transaction = null;
        this.body = null;
        done?.(e.outcome);
        return;
      }
      case 'session-failed': {
        this.failure = e.failure;
        const open = this.opening;
        this.opening = null;
        open?.({ ok: false, fact: { kind: 'session', failure: e.failure, host: this.label } });
        return;
      }
      case 'closed':
        this.flush();
        this.finish();
        return;
    }
  }

  private flush(): void {
    const out = this.session.dataToSend();
    if (out !== null && !this.socket.destroyed) this.socket.write(out);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The timeout of what the session waits for now (the body's blocks are timed while written). */
  private armTimer(): void {
    this.clearTimer();
    if (this.closed || this.streaming) return;
    const kind = this.session.waitingFor();
    if (kind === null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.opts.log.info({ host: this.label, waiting_for: kind }, 'delivery: timeout');
      this.session.timeout();
      this.pump();
      this.socket.destroy();
    }, this.opts.timeouts[kind]);
  }

  private startTls(): void {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.on('error', () => undefined); // the TLS socket reports what goes wrong from here on
    const servername = net.isIP(this.target.host) === 0 ? this.target.host : undefined;
    const secure = tls.connect({ socket: plain, servername, rejectUnauthorized: this.opts.tlsVerify });
    this.socket = secure;
    let established = false;
    secure.once('secureConnect', () => {
      established = true;
      this.attach(secure);
      this.session.tlsEstablished();
      this.pump();
    });
    secure.once('error', (err: Error) => {
      if (established) return;
      this.session.tlsFailed(err.message);
      this.pump();
      secure.destroy();
      this.finish();
    });
    secure.once('close', () => {
      if (!established) this.onGone('connection closed during the TLS handshake');
    });
  }

  /** Streams the body: each block must be taken by the peer within the data-block timeout. */
  private async streamBody(): Promise<void> {
    const source = this.body;
    this.streaming = true;
    this.clearTimer();
    // The body's blocks and the final "." leave in as few writes as the socket allows (one for a
    // small message): corked while they are produced, uncorked to wait for the peer and at the end.
    const socket = this.socket;
    socket.cork();
    try {
      if (source === null) throw new Error('no body to send');
      for await (const chunk of source()) {
        if (this.closed || this.session.isClosed) return;
        this.session.sendBody(chunk);
        const out = this.session.dataToSend();
        if (out !== null && !socket.write(out)) {
          socket.uncork(); // a corked socket never drains
          await this.drained();
          socket.cork();
        }
      }
      if (this.closed || this.session.isClosed) return;
      this.session.endBody();
    } catch (err) {
      if (this.closed || this.session.isClosed) return;
      // The body could not be read (or written): never end the data, so the peer discards it.
      this.opts.log.warn({ host: this.label, err: String(err) }, 'delivery: body not sent whole; dropping the connection');
      this.socket.destroy();
      this.session.connectionLost(`message not sent: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.streaming = false;
      if (!this.closed) this.pump();
      socket.uncork();
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = this.socket;
      const done = (): void => {
        clearTimeout(t);
        socket.removeListener('drain', done);
        socket.removeListener('close', done);
        resolve();
      };
      const t = setTimeout(() => {
        socket.removeListener('drain', done);
        socket.removeListener('close', done);
        this.session.timeout();
        reject(new Error(`no progress for ${this.opts.timeouts['data-block']} ms while sending the body`));
      }, this.opts.timeouts['data-block']);
      socket.once('drain', done);
      socket.once('close', done);
    });
  }
}
