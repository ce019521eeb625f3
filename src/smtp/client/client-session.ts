/**
 * ClientSession: the sending side of one SMTP (RFC 5321) or LMTP (RFC 2033) connection as a pure
 * state machine, the mirror of ServerSession. No sockets, no timers, no clock.
 *
 *   session.receiveData(bytes)                // whatever the socket delivered
 *   for (;;) { const e = session.nextEvent()   // ClientEvent | NEED_DATA
 *              … on 'ready': startTransaction(req); on 'send-body': sendBody(…), endBody() … }
 *   socket.write(session.dataToSend())        // commands and body bytes, in order
 *
 * It greets with EHLO and falls back to HELO on a 5xx (RFC 5321 §3.2), starts TLS when the
 * route asks for it and the server offers it (RFC 3207; nothing read before the handshake is
 * used after it, and the extensions are learnt again), pipelines MAIL, RCPT… and DATA when the
 * server offers PIPELINING (RFC 2920 §3.1: DATA last in the group), passes the DSN parameters on
 * only to a server that offers DSN (RFC 3461 §5.2), and refuses to start what the server cannot
 * take: SMTPUTF8 (RFC 6531 §3.2), 8BITMIME (RFC 6152 §3), SIZE (RFC 1870 §6). Commands are
 * written by the same grammar the server parses with (`encodeCommand`), bodies are dot-stuffed by
 * the same framing code (`DotStuffer`). Every reply is reported with the command it answers.
 *
 * Any 421 ends the session: the transaction's unfinished recipients get it (RFC 5321 §3.8).
 * Timeouts are the adapter's: `waitingFor()` says which RFC 5321 §4.5.3.2 timeout applies now,
 * `timeout()` reports that it ran out.
 */
import { encodeCommand } from '../command.js';
import { DotStuffer } from '../data-framing.js';
import { NO_RCPT_PARAMS, type MailParams } from '../esmtp-params.js';
import { ReplyParser, type ReplyParserLimits, type ServerReply, formatServerReply } from '../reply-parser.js';
import {
  NEED_DATA,
  TIMEOUT_KIND_OF,
  type ClientCommand,
  type ClientEvent,
  type ClientNextEvent,
  type ClientTimeoutKind,
  type SessionFailure,
  type TransactionRefusal,
  type TransactionRequest,
} from './client-events.js';
import { NO_EXTENSIONS, parseEhloExtensions, type EhloExtensions } from './ehlo-extensions.js';
import { RcptOutcomes } from './rcpt-outcomes.js';

export type ClientTlsMode = 'none' | 'opportunistic' | 'required';

export interface ClientSessionOptions {
  /** Our name in EHLO/HELO/LHLO: a domain or an address literal. */
  readonly heloName: string;
  readonly protocol?: 'smtp' | 'lmtp';
  /** STARTTLS: never, when offered, or required (the session fails without it). Default opportunistic. */
  readonly tls?: ClientTlsMode;
  /** Use PIPELINING when the server offers it. Default true. */
  readonly pipelining?: boolean;
  readonly replyLimits?: Partial<ReplyParserLimits>;
}

type Phase =
  | 'greeting' // waiting for the 220
  | 'hello' // EHLO/HELO/LHLO sent
  | 'starttls' // STARTTLS sent
  | 'tls-handshake' // the adapter is upgrading the socket
  | 'ready' // idle between transactions
  | 'transaction' // MAIL/RCPT/DATA/end of data in flight
  | 'body' // 354 received; the adapter streams the body
  | 'quitting'
  | 'closed';

interface PendingCommand {
  readonly command: ClientCommand;
  /** The recipient an RCPT is for. */
  readonly index?: number;
}

interface OpenTransaction {
  readonly request: TransactionRequest;
  readonly outcomes: RcptOutcomes;
  readonly pipelined: boolean;
  /** Non-pipelined: the next recipient to send RCPT for. */
  nextRcpt: number;
  /** MAIL was refused: later replies of the pipelined group only need to be consumed. */
  mailRefused: boolean;
  /** 354 came although no recipient was accepted: an empty body was sent, its reply is ignored. */
  discardingBody: boolean;
}

const CRLF = '\r\n';

function positive(r: ServerReply): boolean {
  return r.code >= 200 && r.code < 300;
}

export class ClientSession {
  private readonly opts: Required<Omit<ClientSessionOptions, 'replyLimits'>>;
  private readonly parser: ReplyParser;
  private phase: Phase = 'greeting';
  private readonly pending: PendingCommand[] = [{ command: 'CONNECT' }];
  private readonly events: ClientEvent[] = [];
  private out: Buffer[] = [];
  private ext: EhloExtensions = NO_EXTENSIONS;
  private tlsActive = false;
  private tx: OpenTransaction | null = null;
  /** A transaction was left open on the server (MAIL accepted, no end of data): RSET first. */
  private needsRset = false;
  private stuffer: DotStuffer | null = null;
  private transactions = 0;

  constructor(opts: ClientSessionOptions) {
    this.opts = {
      heloName: opts.heloName,
      protocol: opts.protocol ?? 'smtp',
      tls: opts.tls ?? 'opportunistic',
      pipelining: opts.pipelining ?? true,
    };
    this.parser = new ReplyParser(opts.replyLimits);
  }

  // ── Public API ─────────────────────────────────────────────────────────────────────────────

  /** Feeds bytes received from the server. */
  receiveData(data: Uint8Array): void {
    if (this.phase === 'closed' || this.phase === 'tls-handshake') return;
    this.parser.receiveData(data);
  }

  /** The next thing that happened, or NEED_DATA when all input is processed. */
  nextEvent(): ClientNextEvent {
    for (;;) {
      const e = this.events.shift();
      if (e) return e;
      if (this.phase === 'closed' || this.phase === 'tls-handshake') return NEED_DATA;
      const r = this.parser.next();
      if (r.kind === 'need-data') return NEED_DATA;
      if (r.kind === 'error') {
        this.fail({ kind: 'protocol', command: this.pending[0]?.command ?? null, detail: r.detail });
        continue;
      }
      this.onReply(r.reply);
    }
  }

  /** Bytes to write to the socket, in order; null when there are none. */
  dataToSend(): Buffer | null {
    if (this.out.length === 0) return null;
    const b = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
    this.out = [];
    return b;
  }

  /** Extensions the server offered in its last EHLO/LHLO reply (none after HELO). */
  get extensions(): EhloExtensions {
    return this.ext;
  }

  get isTls(): boolean {
    return this.tlsActive;
  }

  /** Idle and ready for a transaction. */
  get isReady(): boolean {
    return this.phase === 'ready';
  }

  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  /** Transactions started on this session. */
  get transactionCount(): number {
    return this.transactions;
  }

  /** Which timeout applies now (RFC 5321 §4.5.3.2), or null when the session waits for nobody. */
  waitingFor(): ClientTimeoutKind | null {
    if (this.phase === 'body') return 'data-block';
    if (this.phase === 'tls-handshake') return 'starttls';
    const p = this.pending[0];
    return p ? TIMEOUT_KIND_OF[p.command] : null;
  }

  /**
   * Starts a mail transaction (only when ready). Returns a refusal, and reports it as a finished
   * transaction, when the server cannot take this message; nothing is sent then.
   */
  startTransaction(request: TransactionRequest): TransactionRefusal | null {
    if (this.phase !== 'ready') throw new Error(`ClientSession.startTransaction: session is ${this.phase}, not ready`);
    const refusal = this.refusalFor(request.params);
    const outcomes = new RcptOutcomes(request.recipients.length, this.ext.dsn);
    this.transactions++;
    if (refusal !== null || request.recipients.length === 0) {
      if (refusal !== null) outcomes.settleOpen({ kind: 'refusal', refusal });
      this.events.push({ type: 'transaction-done', outcome: outcomes.outcome() });
      return refusal;
    }
    const pipelined = this.opts.pipelining && this.ext.pipelining;
    this.tx = { request, outcomes, pipelined, nextRcpt: 0, mailRefused: false, discardingBody: false };
    this.phase = 'transaction';
    if (this.needsRset) {
      this.command('RSET', 'RSET');
      if (!pipelined) return null; // MAIL follows the RSET reply
    }
    this.sendMail();
    if (pipelined) {
      for (let i = 0; i < request.recipients.length; i++) this.sendRcpt(i);
      this.command('DATA', 'DATA');
    }
    return null;
  }

  /** Body bytes after 'send-body' (CRLF line endings; dot-stuffed here). */
  sendBody(chunk: Uint8Array): void {
    if (this.phase !== 'body' || this.stuffer === null) throw new Error('ClientSession.sendBody: no body is expected now');
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const stuffed = this.stuffer.push(buf);
    if (stuffed.length > 0) this.out.push(stuffed);
  }

  /** The body is complete: the end-of-data mark goes out (RFC 5321 §4.1.1.4). */
  endBody(): void {
    if (this.phase !== 'body' || this.stuffer === null || this.tx === null) throw new Error('ClientSession.endBody: no body is expected now');
    this.out.push(this.stuffer.end());
    this.stuffer = null;
    this.phase = 'transaction';
    const replies = this.opts.protocol === 'lmtp' ? this.tx.outcomes.expectLmtpReplies() : 1;
    for (let i = 0; i < replies; i++) this.pending.push({ command: 'END-OF-DATA' });
  }

  /** Ends the session politely (QUIT) when idle; otherwise closes at once. */
  quit(): void {
    if (this.phase === 'closed' || this.phase === 'quitting') return;
    if (this.phase !== 'ready') {
      this.fail({ kind: 'connection-lost', command: this.pending[0]?.command ?? null, detail: 'closed by the client' });
      return;
    }
    this.phase = 'quitting';
    this.command('QUIT', 'QUIT');
  }

  /** The TLS handshake after STARTTLS succeeded: say EHLO again (RFC 3207 §4.2). */
  tlsEstablished(): void {
    if (this.phase !== 'tls-handshake') throw new Error('ClientSession.tlsEstablished: no handshake is running');
    this.tlsActive = true;
    this.ext = NO_EXTENSIONS;
    this.sendHello(this.opts.protocol === 'lmtp' ? 'LHLO' : 'EHLO');
  }

  tlsFailed(detail: string): void {
    if (this.phase === 'closed') return;
    this.fail({ kind: 'tls-failed', detail });
  }

  /** The adapter's timer for `waitingFor()` ran out. */
  timeout(): void {
    if (this.phase === 'closed') return;
    const kind = this.waitingFor() ?? 'quit';
    const command: ClientCommand = this.phase === 'body' ? 'DATA' : this.phase === 'tls-handshake' ? 'STARTTLS' : this.pending[0]?.command ?? 'QUIT';
    if (this.phase === 'quitting') return this.close();
    this.fail({ kind: 'timeout', command, timeout: kind });
  }

  /** The socket closed or broke. */
  connectionLost(detail = 'connection closed by the server'): void {
    if (this.phase === 'closed') return;
    if (this.phase === 'quitting') return this.close();
    this.fail({ kind: 'connection-lost', command: this.pending[0]?.command ?? (this.phase === 'body' ? 'DATA' : null), detail });
  }

  // ── Sending ────────────────────────────────────────────────────────────────────────────────

  private command(command: ClientCommand, line: string, index?: number): void {
    this.out.push(Buffer.from(line + CRLF, 'utf8'));
    this.pending.push(index === undefined ? { command } : { command, index });
  }

  private sendHello(verb: 'EHLO' | 'HELO' | 'LHLO'): void {
    this.phase = 'hello';
    // LHLO (RFC 2033 §4.1) has EHLO's syntax; the grammar knows EHLO, so only the verb differs.
    const ehlo = encodeCommand({ verb: verb === 'HELO' ? 'HELO' : 'EHLO', domain: this.opts.heloName });
    this.command(verb, verb === 'LHLO' ? `LHLO${ehlo.slice(4)}` : ehlo);
  }

  private refusalFor(params: MailParams): TransactionRefusal | null {
    if (params.smtputf8 && !this.ext.smtputf8) return { kind: 'smtputf8-not-offered' };
    if (params.body === '8BITMIME' && !this.ext.eightBitMime) return { kind: '8bitmime-not-offered' };
    const limit = this.ext.size;
    if (params.size !== null && limit !== null && limit > 0 && params.size > limit) {
      return { kind: 'size-exceeded', size: params.size, limit };
    }
    return null;
  }

  private sendMail(): void {
    const tx = this.tx as OpenTransaction;
    const p = tx.request.params;
    const dsn = this.ext.dsn;
    const params: MailParams = {
      size: this.ext.size !== null ? p.size : null,
      body: this.ext.eightBitMime ? p.body : null,
      smtputf8: p.smtputf8 && this.ext.smtputf8,
      ret: dsn ? p.ret : null,
      envid: dsn ? p.envid : null,
      auth: null,
    };
    this.command('MAIL', encodeCommand({ verb: 'MAIL', reversePath: tx.request.reversePath, params }));
  }

  private sendRcpt(index: number): void {
    const tx = this.tx as OpenTransaction;
    const r = tx.request.recipients[index];
    const params = this.ext.dsn ? r.params : NO_RCPT_PARAMS;
    this.command('RCPT', encodeCommand({ verb: 'RCPT', forwardPath: r.mailbox, params }), index);
  }

  // ── Replies ────────────────────────────────────────────────────────────────────────────────

  private onReply(reply: ServerReply): void {
    const p = this.pending.shift();
    if (p === undefined && this.phase === 'body') {
      // The server gave up while the body was still being sent (e.g. 552 when it grew too big).
      this.events.push({ type: 'reply', command: 'END-OF-DATA', reply });
      this.fail({ kind: 'reply', command: 'END-OF-DATA', reply });
      return;
    }
    if (p === undefined) {
      // Nothing asked: a server timing out an idle session (421), or junk.
      this.fail({ kind: 'protocol', command: null, detail: `unsolicited reply: ${formatServerReply(reply)}` });
      return;
    }
    this.events.push({ type: 'reply', command: p.command, reply });
    if (reply.code === 421 && p.command !== 'QUIT') {
      // RFC 5321 §3.8: the server is closing the channel; whatever is unfinished is soft.
      this.fail({ kind: 'reply', command: p.command, reply });
      return;
    }
    switch (p.command) {
      case 'CONNECT': return this.onGreeting(reply);
      case 'EHLO': return this.onHello(reply, true);
      case 'LHLO':
      case 'HELO': return this.onHello(reply, false);
      case 'STARTTLS': return this.onStartTls(reply);
      case 'RSET': return this.onRset(reply);
      case 'MAIL': return this.onMail(reply);
      case 'RCPT': return this.onRcpt(reply, p.index ?? 0);
      case 'DATA': return this.onData(reply);
      case 'END-OF-DATA': return this.onEndOfData(reply);
      case 'QUIT': return this.close();
    }
  }

  private onGreeting(reply: ServerReply): void {
    if (!positive(reply)) {
      // RFC 5321 §3.1: after a 554 greeting the client should QUIT.
      this.fail({ kind: 'reply', command: 'CONNECT', reply }, true);
      return;
    }
    this.sendHello(this.opts.protocol === 'lmtp' ? 'LHLO' : 'EHLO');
  }

  private onHello(reply: ServerReply, wasEhlo: boolean): void {
    if (!positive(reply)) {
      // RFC 5321 §3.2: a server that does not know EHLO answers 5xx; try HELO.
      if (wasEhlo && reply.code >= 500) {
        this.sendHello('HELO');
        return;
      }
      this.fail({ kind: 'reply', command: wasEhlo ? 'EHLO' : this.opts.protocol === 'lmtp' ? 'LHLO' : 'HELO', reply }, true);
      return;
    }
    const lastHello = this.opts.protocol === 'lmtp' || wasEhlo;
    this.ext = lastHello ? parseEhloExtensions(reply) : NO_EXTENSIONS;
    if (!this.tlsActive && this.opts.tls !== 'none' && this.ext.starttls) {
      this.phase = 'starttls';
      this.command('STARTTLS', encodeCommand({ verb: 'STARTTLS' }));
      return;
    }
    if (!this.tlsActive && this.opts.tls === 'required') {
      this.fail({ kind: 'tls-not-offered' }, true);
      return;
    }
    this.becomeReady();
  }

  private onStartTls(reply: ServerReply): void {
    if (positive(reply)) {
      // RFC 3207 §4.2 (and the STARTTLS command-injection lesson): bytes that came with or after
      // the 220 were sent in plaintext and are dropped.
      this.parser.discardBuffered();
      this.phase = 'tls-handshake';
      this.events.push({ type: 'start-tls' });
      return;
    }
    if (this.opts.tls === 'required') {
      this.fail({ kind: 'reply', command: 'STARTTLS', reply }, true);
      return;
    }
    // Opportunistic: carry on in plaintext (RFC 3207 §4.1).
    this.becomeReady();
  }

  private becomeReady(): void {
    this.phase = 'ready';
    this.events.push({ type: 'ready', extensions: this.ext, tls: this.tlsActive });
  }

  private onRset(reply: ServerReply): void {
    if (!positive(reply)) {
      this.fail({ kind: 'protocol', command: 'RSET', detail: `RSET refused: ${formatServerReply(reply)}` });
      return;
    }
    this.needsRset = false;
    const tx = this.tx;
    if (tx !== null && !tx.pipelined) this.sendMail();
  }

  private onMail(reply: ServerReply): void {
    const tx = this.tx;
    if (tx === null) return;
    if (!tx.outcomes.onMail(reply)) {
      tx.mailRefused = true;
      return this.maybeFinish();
    }
    if (!tx.pipelined) this.sendRcpt(tx.nextRcpt++);
  }

  private onRcpt(reply: ServerReply, index: number): void {
    const tx = this.tx;
    if (tx === null) return;
    tx.outcomes.onRcpt(index, reply);
    if (tx.pipelined || tx.mailRefused) return this.maybeFinish();
    if (tx.nextRcpt < tx.request.recipients.length) {
      this.sendRcpt(tx.nextRcpt++);
      return;
    }
    if (tx.outcomes.acceptedOpen().length > 0) {
      this.command('DATA', encodeCommand({ verb: 'DATA' }));
      return;
    }
    // Every recipient refused: the transaction stays open on the server.
    this.needsRset = true;
    this.maybeFinish();
  }

  private onData(reply: ServerReply): void {
    const tx = this.tx;
    if (tx === null) return;
    if (reply.code === 354) {
      if (tx.outcomes.acceptedOpen().length > 0) {
        this.phase = 'body';
        this.stuffer = new DotStuffer();
        this.events.push({ type: 'send-body' });
        return;
      }
      // RFC 2920 §3.1: a server may say 354 although it refused every recipient; end the data
      // at once and ignore what it says about the empty message.
      tx.discardingBody = true;
      this.out.push(Buffer.from(`.${CRLF}`));
      this.pending.push({ command: 'END-OF-DATA' });
      return;
    }
    tx.outcomes.onDataRefused(reply);
    if (!tx.mailRefused) this.needsRset = true;
    this.maybeFinish();
  }

  private onEndOfData(reply: ServerReply): void {
    const tx = this.tx;
    if (tx === null) return;
    if (!tx.discardingBody) {
      if (this.opts.protocol === 'lmtp') tx.outcomes.onLmtpReply(reply);
      else tx.outcomes.onEndOfData(reply);
    }
    this.maybeFinish();
  }

  /** Reports the transaction once nothing of it is waiting for a reply. */
  private maybeFinish(): void {
    const tx = this.tx;
    if (tx === null || this.phase === 'body' || this.pending.length > 0) return;
    this.tx = null;
    this.phase = 'ready';
    this.events.push({ type: 'transaction-done', outcome: tx.outcomes.outcome() });
  }

  // ── Ending ─────────────────────────────────────────────────────────────────────────────────

  /** The session cannot go on: settle the transaction, report, close (with QUIT when still polite). */
  private fail(failure: SessionFailure, sayQuit = false): void {
    if (this.phase === 'closed') return;
    const tx = this.tx;
    if (tx !== null) {
      tx.outcomes.settleOpen(
        failure.kind === 'reply'
          ? { kind: 'reply', command: failure.command, reply: failure.reply }
          : { kind: 'failure', failure },
      );
      this.tx = null;
      this.events.push({ type: 'transaction-done', outcome: tx.outcomes.outcome() });
    }
    this.events.push({ type: 'session-failed', failure });
    if (sayQuit) this.out.push(Buffer.from(`${encodeCommand({ verb: 'QUIT' })}${CRLF}`));
    this.close();
  }

  private close(): void {
    this.phase = 'closed';
    this.pending.length = 0;
    this.stuffer = null;
    this.parser.discardBuffered();
    this.events.push({ type: 'closed' });
  }
}
