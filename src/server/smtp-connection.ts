/**
 * SmtpConnection: one socket ⇄ one ServerSession. Feeds bytes in, asks the Intake for each
 * decision (sync or async), writes replies out when the session has processed all it can (the
 * natural flush at the end of a pipelined group, RFC 2920 §3.2), and applies backpressure both
 * ways: reading pauses while input waits behind a decision or the client does not read replies.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import { reply } from '../smtp/reply.js';
import { ServerSession, type ServerSessionOptions } from '../smtp/server/server-session.js';
import { NEED_DATA, PAUSED, type ServerEvent, type Verdict } from '../smtp/server/server-events.js';
import { Intake } from './intake.js';

export interface ConnectionTimeouts {
  /** Waiting for the next command (RFC 5321 §4.5.3.2.7: at least 5 minutes). */
  readonly commandMs: number;
  /** Waiting for the next block of message data (RFC 5321 §4.5.3.2.5: at least 3 minutes). */
  readonly dataBlockMs: number;
  /** Total session time cap. */
  readonly sessionCapMs: number;
  /**
   * Bytes per second a client must keep up while sending message data (Postfix's
   * smtpd_min_data_rate): each block of N bytes extends the deadline by N / rate seconds, never
   * beyond the data-block timeout, so a slow drip cannot hold a slot. 0 = off.
   */
  readonly minDataRate?: number;
}

/** Input waiting behind a decision beyond this pauses reading from the socket. */
const MAX_BUFFERED_INPUT = 256 * 1024;

export class SmtpConnection {
  readonly session: ServerSession;
  private busy = false;
  private ended = false;
  private readPaused = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private capTimer: NodeJS.Timeout | null = null;
  private closeTimer: NodeJS.Timeout | null = null;

  private socket: Socket;
  private readonly onDataBound = (d: Buffer): void => this.onData(d);
  private readonly onEndBound = (): void => this.onPeerGone('end');
  private readonly onErrorBound = (err: Error): void => {
    this.log.debug({ session: this.id, err: err.message }, 'socket error');
    this.onPeerGone('error');
  };
  private readonly onCloseBound = (): void => this.finish();
  private readonly onDrainBound = (): void => this.resumeIfPossible();

  constructor(
    readonly id: string,
    socket: Socket,
    sessionOptions: ServerSessionOptions,
    private readonly intake: Intake,
    private readonly timeouts: ConnectionTimeouts,
    private readonly log: Logger,
    private readonly onClosed: (c: SmtpConnection) => void,
    /** For STARTTLS: the server-side TLS options (certificate, key, versions), or null. */
    private readonly tlsOptions: () => TlsOptions | null = () => null,
  ) {
    this.session = new ServerSession(sessionOptions);
    this.socket = socket;
    socket.setNoDelay(true);
    this.attach(socket);
    this.capTimer = setTimeout(() => this.timeout('time-cap'), timeouts.sessionCapMs);
    this.capTimer.unref();
    this.armIdle();
    this.pump();
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onDataBound);
    socket.on('end', this.onEndBound);
    socket.on('error', this.onErrorBound);
    socket.on('close', this.onCloseBound);
    socket.on('drain', this.onDrainBound);
  }

  private detach(socket: Socket): void {
    socket.off('data', this.onDataBound);
    socket.off('end', this.onEndBound);
    socket.off('error', this.onErrorBound);
    socket.off('close', this.onCloseBound);
    socket.off('drain', this.onDrainBound);
  }

  /**
   * RFC 3207 §4.2: after "220 Ready to start TLS" the handshake runs on the same connection.
   * The session already dropped any plaintext pipelined after STARTTLS; bytes still unread
   * in the socket are handed to the TLS layer (Node does that), where they are ciphertext.
   */
  private upgradeToTls(): void {
    const options = this.tlsOptions();
    const raw = this.socket;
    if (!options) {
      this.endSocket();
      return;
    }
    this.detach(raw);
    raw.on('error', () => undefined); // errors now surface on the TLS socket
    const secure = new TLSSocket(raw, { ...options, isServer: true });
    this.socket = secure;
    this.attach(secure);
    secure.once('secure', () => {
      const cipher = secure.getCipher();
      this.tlsInfo = { version: secure.getProtocol() ?? 'TLS', cipher: cipher?.name ?? 'unknown' };
      this.log.info({ session: this.id, tls_version: this.tlsInfo.version, tls_cipher: this.tlsInfo.cipher }, 'tls established');
      this.session.tlsEstablished();
      this.armIdle();
      this.pump();
    });
  }

  /** The negotiated TLS version and cipher, once TLS is active. */
  tlsInfo: { version: string; cipher: string } | null = null;

  /** Service draining: idle sessions get 421 4.3.2 now; sessions in a transaction at their next command. */
  shutdown(force: boolean): void {
    if (this.ended) return;
    const idle = !this.busy && this.session.transaction === null && !this.session.receivingData;
    this.session.shutdown(force || idle);
    this.pump();
  }

  private onData(d: Buffer): void {
    if (this.ended) return;
    const wasReceivingData = this.session.receivingData;
    this.session.receiveData(d);
    this.pump();
    if (!this.ended) this.armIdle(wasReceivingData ? d.length : 0);
  }

  private onPeerGone(why: string): void {
    if (this.ended) return;
    this.log.debug({ session: this.id, why }, 'peer gone');
    this.session.connectionLost();
    this.intake.discard();
    this.finish();
  }

  private timeout(kind: 'idle' | 'time-cap'): void {
    if (this.ended) return;
    this.log.info({ session: this.id, kind }, 'timeout');
    this.session.timeout(kind);
    this.intake.discard();
    this.pump();
  }

  /** When the current DATA/BDAT transfer times out (ms since the epoch); 0 outside data. */
  private dataDeadline = 0;

  /** (Re)arms the idle timer; `received` bytes of message data earn time at the minimum data rate. */
  private armIdle(received = 0): void {
    const now = Date.now();
    let ms: number;
    const rate = this.timeouts.minDataRate ?? 0;
    if (!this.session.receivingData) {
      this.dataDeadline = 0;
      ms = this.timeouts.commandMs;
    } else if (rate <= 0) {
      ms = this.timeouts.dataBlockMs;
    } else {
      this.dataDeadline = this.dataDeadline === 0
        ? now + this.timeouts.dataBlockMs
        : Math.min(now + this.timeouts.dataBlockMs, this.dataDeadline + (received * 1000) / rate);
      ms = Math.max(0, this.dataDeadline - now);
    }
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.timeout('idle'), ms);
    this.idleTimer.unref();
  }

  /** Runs the session until it needs data or waits for an async decision. */
  private pump(): void {
    if (this.busy || this.ended) return;
    for (;;) {
      const e = this.session.nextEvent();
      if (e === NEED_DATA || e === PAUSED) break;
      if (this.handle(e)) return; // an async decision is running; it resumes the pump
    }
    this.flush();
    this.resumeIfPossible();
  }

  /** Handles one event. Returns true when an async decision was started. */
  private handle(e: ServerEvent): boolean {
    const s = this.session;
    switch (e.type) {
      case 'connect': return this.decide(() => this.intake.connect());
      case 'helo': return this.decide(() => this.intake.helo(e.verb, e.domain));
      case 'mail': return this.decide(() => this.intake.mail(s, e.reversePath, e.params));
      case 'rcpt': return this.decide(() => this.intake.rcpt(s, e.forwardPath, e.params));
      case 'data-start': {
        const r = this.decide(() => this.intake.dataStart(s));
        this.armIdle();
        return r;
      }
      case 'body':
        this.intake.body(e.chunk);
        // The content checks hash the body as it comes; when they lag, the client waits (bounded memory).
        if (this.intake.bodyBacklogged) {
          this.pauseReading();
          void this.intake.bodyDrained().then(() => this.resumeIfPossible());
        }
        return false;
      case 'message-end': {
        // Replies so far go out before the commit waits (the client sees progress in order anyway).
        return this.decide(() => this.intake.messageEnd(s));
      }
      case 'message-aborted':
        this.intake.discard();
        return false;
      case 'transaction-reset':
        this.armIdle();
        return false;
      case 'status-request': return this.decide(() => this.intake.status());
      case 'starttls': return this.decide(() => this.intake.starttls(this.tlsOptions() !== null));
      case 'auth': return this.decide(() => this.intake.auth(e.mechanism, e.username, e.password, e.authzid));
      case 'tls-upgrade':
        this.flush();
        this.upgradeToTls();
        return false;
      case 'replied':
        this.intake.replied(e.command, e.reply);
        if (e.reply.code >= 400) {
          this.log.info({ session: this.id, command: e.command, reply: `${e.reply.code} ${e.reply.enhanced ?? ''} ${e.reply.lines[0]}`.replace('  ', ' ') }, 'rejected');
        }
        return false;
      case 'close':
        this.flush();
        this.endSocket();
        return false;
    }
  }

  private decide(ask: () => Verdict | Promise<Verdict>): boolean {
    let v: Verdict | Promise<Verdict>;
    try {
      v = ask();
    } catch (err) {
      this.log.error({ session: this.id, err }, 'decision failed');
      v = { kind: 'reject', reply: reply('local-error') };
    }
    if (!(v instanceof Promise)) {
      this.session.answer(v);
      return false;
    }
    this.busy = true;
    this.flush();
    v.catch((err: unknown): Verdict => {
      this.log.error({ session: this.id, err }, 'decision failed');
      return { kind: 'reject', reply: reply('local-error') };
    }).then((verdict) => {
      this.busy = false;
      if (this.ended) {
        this.intake.discard();
        return;
      }
      this.session.answer(verdict);
      this.armIdle();
      this.pump();
    });
    return true;
  }

  private flush(): void {
    const out = this.session.dataToSend();
    if (out && !this.socket.destroyed) {
      if (!this.socket.write(out)) this.pauseReading();
    }
    if (this.session.bufferedInput > MAX_BUFFERED_INPUT) this.pauseReading();
  }

  private pauseReading(): void {
    if (!this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  private resumeIfPossible(): void {
    if (this.readPaused && !this.socket.writableNeedDrain && this.session.bufferedInput <= MAX_BUFFERED_INPUT && !this.intake.bodyBacklogged) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  private endSocket(): void {
    if (this.socket.destroyed) return this.finish();
    this.socket.end();
    // A peer that never reads or closes must not keep the slot.
    this.closeTimer = setTimeout(() => this.socket.destroy(), 5000);
    this.closeTimer.unref();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.capTimer) clearTimeout(this.capTimer);
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.session.connectionLost();
    this.intake.discard();
    if (!this.socket.destroyed) this.socket.destroySoon();
    this.onClosed(this);
  }
}
