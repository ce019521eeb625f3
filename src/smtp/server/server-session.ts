/**
 * ServerSession: the receiving side of one SMTP connection as a pure state machine (RFC 5321,
 * with RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531
 * SMTPUTF8, RFC 3461 DSN, RFC 2034 ENHANCEDSTATUSCODES). No sockets, no timers, no clock.
 *
 *   session.receiveData(bytes)              // whatever the socket delivered
 *   for (;;) { const e = session.nextEvent() // ServerEvent | NEED_DATA | PAUSED
 *              … answer decisions with session.answer(verdict) … }
 *   socket.write(session.dataToSend())      // replies, strictly in command order
 *
 * Syntax, sequence, size, line-length and bare-line-ending errors are answered here from the
 * catalogue. Decisions (connect, HELO, MAIL, RCPT, DATA, end of data) go to the adapter; while
 * one is open, later input stays unread, so pipelined commands are answered in order
 * (RFC 2920 §3.1) and bytes after a 354 are read as data, not as commands.
 */
import { parseCommand, type Command } from '../command.js';
import type { Mailbox } from '../mailbox.js';
import type { MailParams, RcptParams } from '../esmtp-params.js';
import { encodeReply, reply, type Reply, type ReplyVars } from '../reply.js';
import type { ReplyId } from '../reply-catalogue.js';
import { CommandLineReader } from '../line-reader.js';
import { DataFramer, HeaderMeter, type BareLineEndingMode } from '../data-framing.js';
import { ehloKeywords } from './capabilities.js';
import { COMMAND_TABLE, isVerb } from './command-table.js';
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from './session-limits.js';
import { SASL_MECHANISMS, SaslExchange, type SaslMechanism, type SaslStep } from './sasl-exchange.js';
import {
  NEED_DATA,
  PAUSED,
  type CloseReason,
  type MessageAbortReason,
  type NextEvent,
  type ServerEvent,
  type Verdict,
} from './server-events.js';

export interface ServerSessionOptions {
  readonly hostname: string;
  readonly banner: string;
  /** How the client is named in the HELO reply, e.g. "[192.0.2.1]". */
  readonly clientName: string;
  readonly limits?: Partial<SessionLimits>;
  readonly bareLineEndings?: BareLineEndingMode;
  /** VRFY answers 252 when true (the default), 502 when false. */
  readonly vrfy?: boolean;
  /** STARTTLS is offered (a certificate is configured; RFC 3207). */
  readonly tlsAvailable?: boolean;
  /** The connection is already encrypted (implicit TLS, RFC 8314). */
  readonly tlsActive?: boolean;
  /** Only EHLO/HELO/STARTTLS/NOOP/RSET/QUIT before TLS; everything else 530 5.7.0. */
  readonly requireTls?: boolean;
  /** SASL mechanisms for AUTH (RFC 4954); empty or absent = no AUTH. */
  readonly authMechanisms?: readonly SaslMechanism[];
  /** AUTH is offered only under TLS (538 5.7.11 otherwise) unless this is false. */
  readonly authRequiresTls?: boolean;
  /** MAIL needs a successful AUTH first (530 5.7.0). */
  readonly requireAuth?: boolean;
  /** Failed AUTH attempts in one session before 421 4.7.0 (default 3). */
  readonly maxAuthFailures?: number;
  /**
   * Builds the replies the session gives by itself (default: the catalogue's `reply`). The
   * adapter passes the policy's, so its code/text overrides apply to size, recipient and
   * message-count refusals too.
   */
  readonly renderReply?: (id: ReplyId, vars: ReplyVars, extraLines?: readonly string[]) => Reply;
}

/** Commands allowed before STARTTLS when TLS is required (as Postfix with smtpd_tls_security_level=encrypt). */
const PRE_TLS_VERBS = new Set(['EHLO', 'HELO', 'STARTTLS', 'NOOP', 'RSET', 'QUIT']);

/** RFC 4954 §4: an AUTH response line may be up to 12,288 octets. */
const AUTH_LINE_MAX = 12_288 + 2;

export interface TransactionRecipient {
  readonly mailbox: Mailbox;
  readonly params: RcptParams;
}

export interface Transaction {
  readonly reversePath: Mailbox | null;
  readonly params: MailParams;
  readonly recipients: TransactionRecipient[];
  /** RCPT commands that reached a decision or a rejection in this transaction. */
  rcptAttempts: number;
}

type Phase = 'connect' | 'rejected' | 'fresh' | 'ready' | 'closed';

type Pending =
  | { readonly kind: 'connect' }
  | { readonly kind: 'helo'; readonly verb: 'HELO' | 'EHLO'; readonly domain: string }
  | { readonly kind: 'mail'; readonly reversePath: Mailbox | null; readonly params: MailParams }
  | { readonly kind: 'rcpt'; readonly forwardPath: Mailbox; readonly params: RcptParams }
  | { readonly kind: 'data-start'; readonly bdat: { readonly size: number; readonly last: boolean } | null }
  | { readonly kind: 'message-end' }
  | { readonly kind: 'starttls' }
  | { readonly kind: 'auth'; readonly mechanism: string }
  | { readonly kind: 'status' };

/** Receiving state of a BDAT chunk or a DATA body. */
interface BodyState {
  readonly framer: DataFramer;
  readonly header: HeaderMeter;
  size: number;
  tooBig: boolean;
}

/** A BDAT chunk being read: its bytes go to the body, or are skipped when the chunk was refused. */
interface ChunkState {
  remaining: number;
  readonly last: boolean;
  readonly size: number;
  /** When set, the chunk is read and dropped, then this reply is sent. */
  readonly refusal: Reply | null;
}

export class ServerSession {
  readonly hostname: string;
  private readonly limits: SessionLimits;
  private readonly lineReader: CommandLineReader;
  private readonly bareMode: BareLineEndingMode;

  private phase: Phase = 'connect';
  private input: Buffer = Buffer.alloc(0);
  private readonly events: ServerEvent[] = [];
  private out: string[] = [];
  private pending: Pending | null = { kind: 'connect' };
  private connectAnnounced = false;

  private heloName: string | null = null;
  private extended = false;
  private tx: Transaction | null = null;
  private body: BodyState | null = null;
  private mode: 'command' | 'data' | 'bdat' = 'command';
  private chunk: ChunkState | null = null;

  private errors = 0;
  private junkCommands = 0;
  private messagesAccepted = 0;
  private draining = false;
  private tlsActive: boolean;
  /** STARTTLS answered 220: input is ignored until `tlsEstablished()`. */
  private tlsUpgrading = false;
  private authenticatedAs: string | null = null;
  private sasl: SaslExchange | null = null;
  private authFailures = 0;
  /** Current command verb, for `replied` events. */
  private currentVerb: string | null = null;

  constructor(private readonly opts: ServerSessionOptions) {
    this.hostname = opts.hostname;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...opts.limits };
    this.lineReader = new CommandLineReader(this.limits.maxLineLength);
    this.bareMode = opts.bareLineEndings ?? 'reject';
    this.tlsActive = opts.tlsActive ?? false;
  }

  // ── Public API ─────────────────────────────────────────────────────────────────────────────

  /** Feeds bytes received from the client. */
  receiveData(data: Uint8Array): void {
    if (this.phase === 'closed' || this.tlsUpgrading || data.length === 0) return;
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    this.input = this.input.length === 0 ? buf : Buffer.concat([this.input, buf]);
  }

  /** Bytes received but not yet processed (waiting behind a decision). Adapters pause reading above a bound. */
  get bufferedInput(): number {
    return this.input.length;
  }

  /** The next thing that happened, NEED_DATA when all input is processed, PAUSED while a decision is open. */
  nextEvent(): NextEvent {
    for (;;) {
      const e = this.events.shift();
      if (e) return e;
      if (this.phase === 'closed') return NEED_DATA;
      if (this.pending) {
        if (this.pending.kind === 'connect' && !this.connectAnnounced) {
          this.connectAnnounced = true;
          return { type: 'connect' };
        }
        return PAUSED;
      }
      if (!this.step()) return NEED_DATA;
    }
  }

  /** Answers the open decision. */
  answer(verdict: Verdict): void {
    const p = this.pending;
    if (!p) throw new Error('ServerSession.answer: no decision is open');
    this.pending = null;
    switch (p.kind) {
      case 'connect': return this.answerConnect(verdict);
      case 'helo': return this.answerHelo(p, verdict);
      case 'mail': return this.answerMail(p, verdict);
      case 'rcpt': return this.answerRcpt(p, verdict);
      case 'data-start': return this.answerDataStart(p, verdict);
      case 'message-end': return this.answerMessageEnd(verdict);
      case 'starttls': return this.answerStarttls(verdict);
      case 'auth': return this.answerAuth(p.mechanism, verdict);
      case 'status': return this.answerGeneric(verdict, 'help.status');
    }
  }

  /** Replies to send, in order; null when there are none. */
  dataToSend(): Buffer | null {
    if (this.out.length === 0) return null;
    const b = Buffer.from(this.out.join(''), 'utf8');
    this.out = [];
    return b;
  }

  /** The open transaction (envelope so far), or null. */
  get transaction(): Readonly<Transaction> | null {
    return this.tx;
  }

  get helo(): string | null {
    return this.heloName;
  }

  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  /** True while message data is being received (DATA after 354, or a BDAT chunk). */
  get receivingData(): boolean {
    return this.mode !== 'command' || this.pending?.kind === 'message-end';
  }

  /** A timer of the adapter fired: 421 4.4.2 and close (RFC 5321 §4.5.3.2). */
  timeout(kind: 'idle' | 'time-cap'): void {
    if (this.phase === 'closed') return;
    this.abortMessage('closed');
    this.closeWith(kind === 'idle' ? 'session.idle-timeout' : 'session.time-cap', kind === 'idle' ? 'idle-timeout' : 'time-cap');
  }

  /**
   * The service is draining: the next command gets 421 4.3.2. With `now`, the session is closed
   * at once with 421 4.3.2 (the grace period is over, or it was idle).
   */
  shutdown(now = false): void {
    if (this.phase === 'closed') return;
    this.draining = true;
    if (now) {
      this.abortMessage('closed');
      this.closeWith('service.shutting-down', 'shutdown');
    }
  }

  /** The peer went away: aborts any message in progress. */
  connectionLost(): void {
    if (this.phase === 'closed') return;
    this.abortMessage('closed');
    this.phase = 'closed';
    this.pending = null;
  }

  /** Updates limits decided after the connection was accepted (e.g. by the sender group's policy). */
  setLimits(limits: Partial<SessionLimits>): void {
    Object.assign(this.limits, limits);
  }

  // ── Replies ────────────────────────────────────────────────────────────────────────────────

  private send(r: Reply): void {
    this.out.push(encodeReply(r));
    this.events.push({ type: 'replied', reply: r, command: this.currentVerb });
  }

  private render(id: ReplyId, vars?: ReplyVars, extra?: readonly string[]): Reply {
    return (this.opts.renderReply ?? reply)(id, { hostname: this.hostname, ...vars }, extra);
  }

  private sendId(id: ReplyId, vars?: ReplyVars, extra?: readonly string[]): void {
    this.send(this.render(id, vars, extra));
  }

  private closeWith(id: ReplyId, reason: CloseReason): void {
    this.sendId(id);
    this.close(reason);
  }

  private close(reason: CloseReason): void {
    this.phase = 'closed';
    this.pending = null;
    this.input = Buffer.alloc(0);
    this.events.push({ type: 'close', reason });
  }

  /** A bad command: its reply, then 421 once the error limit is reached (as Postfix does). */
  private protocolError(id: ReplyId, vars?: ReplyVars): void {
    this.errors++;
    this.sendId(id, vars);
    if (this.errors >= this.limits.maxErrors) this.closeWith('session.too-many-errors', 'too-many-errors');
  }

  // ── Input processing ───────────────────────────────────────────────────────────────────────

  /** Processes some input. Returns false when nothing could be done (need more data). */
  private step(): boolean {
    if (this.mode === 'data') return this.stepData();
    if (this.mode === 'bdat') return this.stepChunk();
    return this.stepCommand();
  }

  private consume(next: number): void {
    this.input = next >= this.input.length ? Buffer.alloc(0) : this.input.subarray(next);
  }

  private stepCommand(): boolean {
    if (this.input.length === 0 || this.tlsUpgrading) return false;
    const r = this.lineReader.read(this.input, 0, this.sasl ? AUTH_LINE_MAX : this.limits.maxLineLength);
    this.consume(r.next);
    this.currentVerb = null;
    switch (r.kind) {
      case 'incomplete':
        return r.next > 0; // progress when an overlong line's tail was skipped
      case 'too-long':
        this.protocolError('command.line-too-long');
        return true;
      case 'bare-lf':
        // RFC 5321 §2.3.8: a command must end with CRLF.
        this.protocolError('command.unrecognized');
        return true;
      case 'line':
        if (this.sasl) this.handleSaslLine(r.line);
        else this.handleLine(r.line);
        return true;
    }
  }

  private handleLine(line: Buffer): void {
    const parsed = parseCommand(line);
    const verb = parsed.ok ? parsed.command.verb : parsed.verb;
    this.currentVerb = verb;

    if (this.draining && verb !== 'QUIT') {
      this.closeWith('service.shutting-down', 'shutdown');
      return;
    }
    if (this.phase === 'rejected') {
      // RFC 5321 §3.1: after a 554 greeting only QUIT is honoured.
      if (verb === 'QUIT') this.closeWith('quit', 'quit');
      else this.protocolError('sequence.rejected-session');
      return;
    }
    if (this.opts.requireTls && !this.tlsActive && verb !== null && !PRE_TLS_VERBS.has(verb)) {
      // RFC 3207 §4: the policy requires TLS for everything that matters.
      this.errors++;
      this.sendId('tls.required');
      if (this.errors >= this.limits.maxErrors) this.closeWith('session.too-many-errors', 'too-many-errors');
      return;
    }
    if (verb !== null && isVerb(verb) && COMMAND_TABLE[verb].junk) {
      this.junkCommands++;
      if (this.junkCommands > this.limits.maxCommandsWithoutTransaction) {
        this.closeWith('session.too-many-commands', 'too-many-commands');
        return;
      }
    }
    if (!parsed.ok) {
      // Sequence errors come before syntax errors for commands that need a transaction.
      if (parsed.verb === 'MAIL' && (this.phase !== 'ready' || this.tx)) return this.mailSequenceError();
      if (parsed.verb === 'RCPT') {
        if (!this.tx) return this.rcptSequenceError();
        this.tx.rcptAttempts++; // a broken RCPT is still an RCPT given (554 vs 503 at DATA)
      }
      this.protocolError(parsed.error.replyId, parsed.error.vars);
      return;
    }
    this.dispatch(parsed.command);
  }

  private dispatch(cmd: Command): void {
    switch (cmd.verb) {
      case 'HELO':
      case 'EHLO':
        this.resetTransaction();
        this.pending = { kind: 'helo', verb: cmd.verb, domain: cmd.domain };
        this.events.push({ type: 'helo', verb: cmd.verb, domain: cmd.domain });
        return;
      case 'MAIL':
        return this.onMail(cmd.reversePath, cmd.params);
      case 'RCPT':
        return this.onRcpt(cmd.forwardPath, cmd.params);
      case 'DATA':
        return this.onData();
      case 'BDAT':
        return this.onBdat(cmd.size, cmd.last);
      case 'RSET':
        this.resetTransaction();
        this.sendId('rset.ok');
        return;
      case 'NOOP':
        this.sendId('noop.ok');
        return;
      case 'QUIT':
        this.resetTransaction();
        this.closeWith('quit', 'quit');
        return;
      case 'HELP':
        return this.onHelp(cmd.topic);
      case 'VRFY':
        if (this.opts.vrfy === false) this.protocolError('command.not-implemented');
        else this.sendId('vrfy.cannot-verify');
        return;
      case 'STARTTLS':
        return this.onStarttls();
      case 'AUTH':
        return this.onAuth(cmd.mechanism, cmd.initialResponse);
      case 'EXPN':
      case 'TURN':
      case 'SEND':
      case 'SOML':
      case 'SAML':
      case 'ETRN':
      case 'ATRN':
        this.protocolError('command.not-implemented');
        return;
    }
  }

  private mailSequenceError(): void {
    if (this.phase === 'fresh') this.protocolError('sequence.need-helo');
    else this.protocolError('sequence.nested-mail');
  }

  private rcptSequenceError(): void {
    if (this.phase === 'fresh') this.protocolError('sequence.need-helo');
    else this.protocolError('sequence.need-mail');
  }

  private onMail(reversePath: Mailbox | null, params: MailParams): void {
    if (this.phase !== 'ready' || this.tx) return this.mailSequenceError();
    if (this.messagesAccepted >= this.limits.maxMessagesPerConnection) {
      this.closeWith('session.max-messages', 'max-messages');
      return;
    }
    // RFC 4954 §6: a server that requires authentication answers 530 5.7.0.
    if (this.opts.requireAuth && this.authenticatedAs === null) {
      this.sendId('auth.required');
      return;
    }
    // RFC 6531 §3.4: a UTF-8 address needs the SMTPUTF8 parameter.
    if (reversePath?.utf8 && !params.smtputf8) return this.protocolError('mail.bad-sender');
    // RFC 1870 §6.1: a declared size above the fixed maximum is refused permanently.
    if (params.size !== null && params.size > this.limits.maxMessageSize) {
      this.sendId('mail.size-exceeded');
      return;
    }
    this.pending = { kind: 'mail', reversePath, params };
    this.events.push({ type: 'mail', reversePath, params });
  }

  private onRcpt(forwardPath: Mailbox, params: RcptParams): void {
    if (!this.tx) return this.rcptSequenceError();
    if (forwardPath.utf8 && !this.tx.params.smtputf8) {
      this.tx.rcptAttempts++;
      return this.protocolError('rcpt.bad-recipient');
    }
    if (this.tx.recipients.length >= this.limits.maxRecipients) {
      // RFC 5321 §4.5.3.1.10: 452 for too many recipients; the client sends the rest later.
      this.tx.rcptAttempts++;
      this.sendId('rcpt.too-many');
      return;
    }
    this.pending = { kind: 'rcpt', forwardPath, params };
    this.events.push({ type: 'rcpt', forwardPath, params });
  }

  /** DATA/BDAT preconditions; returns the reply that refuses it, or null. */
  private dataRefusal(): ReplyId | null {
    if (this.phase === 'fresh') return 'sequence.need-helo';
    if (!this.tx) return 'sequence.need-mail';
    if (this.tx.recipients.length > 0) return null;
    return this.tx.rcptAttempts > 0 ? 'data.no-valid-recipients' : 'sequence.need-rcpt';
  }

  private onData(): void {
    if (this.chunk !== null || this.body !== null) {
      // DATA in the middle of a BDAT transfer (RFC 3030 §3).
      return this.protocolError('sequence.need-mail');
    }
    const refusal = this.dataRefusal();
    if (refusal === 'data.no-valid-recipients') {
      this.sendId(refusal);
      return;
    }
    if (refusal) return this.protocolError(refusal);
    this.pending = { kind: 'data-start', bdat: null };
    this.events.push({ type: 'data-start', via: 'DATA' });
  }

  private onBdat(size: number, last: boolean): void {
    if (this.body) {
      // A later chunk of a transfer already accepted.
      this.beginChunk(size, last, null);
      return;
    }
    const refusal = this.dataRefusal();
    if (refusal) {
      // RFC 3030 §4.2: the chunk is read (and dropped) before the reply.
      if (refusal !== 'data.no-valid-recipients') this.errors++;
      this.beginChunk(size, last, this.render(refusal));
      return;
    }
    this.pending = { kind: 'data-start', bdat: { size, last } };
    this.events.push({ type: 'data-start', via: 'BDAT' });
  }

  private onHelp(topic: string | null): void {
    if (topic === null) {
      const verbs = Object.entries(COMMAND_TABLE).filter(([, i]) => i.listed).map(([v]) => v);
      this.sendId('help.commands', { help: 'Commands supported:' }, [verbs.join(' '), 'HELP <command> for its syntax; HELP STATUS for the system status']);
      return;
    }
    const t = topic.toUpperCase();
    if (t === 'STATUS') {
      this.pending = { kind: 'status' };
      this.events.push({ type: 'status-request' });
      return;
    }
    if (isVerb(t)) {
      this.sendId('help.commands', { help: COMMAND_TABLE[t].syntax });
      return;
    }
    this.protocolError('help.unknown-topic', { topic });
  }

  // ── STARTTLS and AUTH ──────────────────────────────────────────────────────────────────────

  private onStarttls(): void {
    if (this.tlsActive) return this.protocolError('sequence.tls-active');
    if (!this.opts.tlsAvailable) return this.protocolError('command.not-implemented');
    if (this.tx) return this.protocolError('sequence.nested-mail');
    this.pending = { kind: 'starttls' };
    this.events.push({ type: 'starttls' });
  }

  private answerStarttls(v: Verdict): void {
    if (!this.applyVerdict(v, 'starttls.ready')) return;
    // CVE-2011-0411 class: anything pipelined after STARTTLS arrived in plaintext and is dropped.
    this.input = Buffer.alloc(0);
    this.tlsUpgrading = true;
    this.events.push({ type: 'tls-upgrade' });
  }

  private authOffered(): boolean {
    const mechs = this.opts.authMechanisms ?? [];
    return mechs.length > 0 && (this.tlsActive || this.opts.authRequiresTls === false);
  }

  private onAuth(mechanism: string, initialResponse: string | null): void {
    const mechs = this.opts.authMechanisms ?? [];
    if (mechs.length === 0) return this.protocolError('command.not-implemented');
    if (!this.authOffered()) return this.protocolError('auth.encryption-required');
    if (this.phase === 'fresh') return this.protocolError('sequence.need-helo');
    if (this.authenticatedAs !== null) return this.protocolError('auth.already-authenticated');
    if (this.tx) return this.protocolError('auth.in-transaction');
    const mech = SASL_MECHANISMS.find((m) => m === mechanism && mechs.includes(m));
    if (!mech) return this.protocolError('auth.mechanism-unknown');
    this.sasl = new SaslExchange(mech);
    this.saslStep(this.sasl.start(initialResponse));
  }

  private handleSaslLine(line: Buffer): void {
    this.currentVerb = 'AUTH';
    if (this.sasl) this.saslStep(this.sasl.respond(line.toString('latin1')));
  }

  private saslStep(step: SaslStep): void {
    const sasl = this.sasl;
    if (!sasl) return;
    switch (step.kind) {
      case 'challenge':
        this.sendId('auth.challenge', { challenge: step.challenge });
        return;
      case 'cancelled':
        this.sasl = null;
        this.protocolError('auth.cancelled');
        return;
      case 'malformed':
        this.sasl = null;
        this.protocolError('auth.bad-base64');
        return;
      case 'done':
        this.sasl = null;
        this.pending = { kind: 'auth', mechanism: sasl.mechanism };
        this.pendingAuthUser = step.credentials.username;
        this.events.push({ type: 'auth', mechanism: sasl.mechanism, ...step.credentials });
    }
  }

  private pendingAuthUser: string | null = null;

  private answerAuth(_mechanism: string, v: Verdict): void {
    const user = this.pendingAuthUser;
    this.pendingAuthUser = null;
    if (this.applyVerdict(v, 'auth.ok')) {
      this.authenticatedAs = user;
      return;
    }
    if (v.kind === 'reject' && v.reply.code === 535) {
      this.authFailures++;
      if (this.authFailures >= (this.opts.maxAuthFailures ?? 3)) this.closeWith('auth.too-many-failures', 'auth-failures');
    }
  }

  // ── Decisions ──────────────────────────────────────────────────────────────────────────────

  private answerConnect(v: Verdict): void {
    if (v.kind === 'refuse') {
      this.close('refused');
      return;
    }
    if (v.kind === 'reject') {
      this.send(v.reply);
      if (v.disconnect || v.reply.code === 421) this.close('rejected');
      else this.phase = 'rejected';
      return;
    }
    if (this.draining) {
      this.closeWith('service.shutting-down', 'shutdown');
      return;
    }
    this.send(v.reply ?? this.render('greeting', { banner: this.opts.banner }));
    this.phase = 'fresh';
  }

  /** Sends the verdict's reply (or the default) and applies a disconnect. Returns true if accepted. */
  private applyVerdict(v: Verdict, defaultId: ReplyId, vars?: ReplyVars): boolean {
    if (v.kind === 'accept') {
      this.send(v.reply ?? this.render(defaultId, vars));
      return true;
    }
    if (v.kind === 'refuse') throw new Error('refuse is a connect verdict only');
    this.send(v.reply);
    if (v.disconnect) this.close('policy');
    return false;
  }

  private answerGeneric(v: Verdict, defaultId: ReplyId): void {
    this.applyVerdict(v, defaultId);
  }

  private answerHelo(p: { verb: 'HELO' | 'EHLO'; domain: string }, v: Verdict): void {
    if (v.kind !== 'accept') {
      this.applyVerdict(v, 'helo.ok');
      return;
    }
    const first = v.reply ?? this.render('helo.ok', { client: this.opts.clientName });
    const lines = p.verb === 'EHLO'
      ? [...first.lines, ...ehloKeywords({
        maxMessageSize: this.limits.maxMessageSize,
        tlsAvailable: this.opts.tlsAvailable ?? false,
        tlsActive: this.tlsActive,
        authMechanisms: this.authOffered() ? this.opts.authMechanisms ?? [] : [],
      })]
      : first.lines;
    this.send({ ...first, lines });
    this.heloName = p.domain;
    this.extended = p.verb === 'EHLO';
    this.phase = 'ready';
  }

  private answerMail(p: { reversePath: Mailbox | null; params: MailParams }, v: Verdict): void {
    const address = p.reversePath ? formatAddress(p.reversePath) : '';
    if (this.applyVerdict(v, 'mail.ok', { address })) {
      this.tx = { reversePath: p.reversePath, params: p.params, recipients: [], rcptAttempts: 0 };
    }
  }

  private answerRcpt(p: { forwardPath: Mailbox; params: RcptParams }, v: Verdict): void {
    if (!this.tx) return; // the transaction was reset meanwhile (cannot happen: input is paused)
    this.tx.rcptAttempts++;
    if (this.applyVerdict(v, 'rcpt.ok', { address: formatAddress(p.forwardPath) })) {
      this.tx.recipients.push({ mailbox: p.forwardPath, params: p.params });
    }
  }

  private newBody(dotTerminated: boolean): BodyState {
    return { framer: new DataFramer(this.bareMode, dotTerminated), header: new HeaderMeter(), size: 0, tooBig: false };
  }

  private answerDataStart(p: { bdat: { size: number; last: boolean } | null }, v: Verdict): void {
    if (p.bdat === null) {
      if (this.applyVerdict(v, 'data.go-ahead')) {
        this.body = this.newBody(true);
        this.mode = 'data';
      }
      return;
    }
    if (v.kind === 'accept') {
      this.body = this.newBody(false);
      this.beginChunk(p.bdat.size, p.bdat.last, null);
      return;
    }
    if (v.kind === 'refuse') throw new Error('refuse is a connect verdict only');
    // RFC 3030: the refused chunk is still read; the reply follows it. The transaction ends.
    this.resetTransaction();
    this.beginChunk(p.bdat.size, p.bdat.last, v.reply);
    if (v.disconnect) this.close('policy');
  }

  private answerMessageEnd(v: Verdict): void {
    const accepted = this.applyVerdict(v, 'local-error');
    if (accepted) {
      this.messagesAccepted++;
      this.junkCommands = 0;
    }
    // RFC 5321 §4.1.1.4: after the end of data the transaction is over, whatever the reply.
    this.tx = null;
    this.body = null;
    if (this.phase !== 'closed') this.events.push({ type: 'transaction-reset' });
  }

  // ── DATA ───────────────────────────────────────────────────────────────────────────────────

  private stepData(): boolean {
    const body = this.body;
    if (!body || this.input.length === 0) return false;
    const res = body.framer.feed(this.input, 0, this.input.length, (c) => this.onBodyBytes(body, c));
    this.consume(res.consumed);
    if (this.phase === 'closed') return true;
    if (res.ended) {
      this.mode = 'command';
      this.currentVerb = 'DATA';
      this.endOfMessage(body);
    }
    return true;
  }

  private onBodyBytes(body: BodyState, c: Buffer): void {
    if (this.phase === 'closed') return;
    body.size += c.length;
    if (body.size > 2 * this.limits.maxMessageSize) {
      // Past twice the limit we stop reading: 552, then close.
      this.abortMessage('too-big');
      this.closeWith('data.size-exceeded', 'too-big');
      return;
    }
    if (body.tooBig) return;
    if (body.size > this.limits.maxMessageSize) {
      body.tooBig = true;
      return;
    }
    body.header.observe(c);
    this.events.push({ type: 'body', chunk: c });
  }

  private endOfMessage(body: BodyState): void {
    let refusal: ReplyId | null = null;
    let reason: MessageAbortReason = 'rejected';
    const vars: Record<string, string | number> = {};
    if (body.framer.bareLineEnding && this.bareMode === 'reject') {
      refusal = 'data.bare-line-ending';
      reason = 'bare-line-ending';
    } else if (body.tooBig) {
      refusal = 'data.size-exceeded';
      reason = 'too-big';
    } else if (body.header.lines > this.limits.maxHeaderLines || body.header.bytes > this.limits.maxHeaderBytes) {
      refusal = 'data.header-too-big';
      reason = 'header-too-big';
      vars.limit = body.header.lines > this.limits.maxHeaderLines
        ? `${this.limits.maxHeaderLines} lines`
        : `${this.limits.maxHeaderBytes} bytes`;
    }
    if (refusal) {
      this.body = null;
      this.tx = null;
      this.events.push({ type: 'message-aborted', reason });
      this.sendId(refusal, vars);
      this.events.push({ type: 'transaction-reset' });
      return;
    }
    this.pending = { kind: 'message-end' };
    this.events.push({ type: 'message-end', size: body.size });
  }

  // ── BDAT ───────────────────────────────────────────────────────────────────────────────────

  private beginChunk(size: number, last: boolean, refusal: Reply | null): void {
    const body = this.body;
    if (!refusal && body && body.size + size > this.limits.maxMessageSize) {
      // The declared chunk does not fit: refuse it now, read and drop its bytes.
      this.abortMessage('too-big');
      this.resetTransaction();
      refusal = this.render('data.size-exceeded');
    }
    this.chunk = { remaining: size, last, size, refusal };
    this.mode = 'bdat';
    if (size === 0) this.endChunk();
  }

  private stepChunk(): boolean {
    const chunk = this.chunk;
    if (!chunk) return false;
    if (this.input.length === 0 && chunk.remaining > 0) return false;
    const n = Math.min(chunk.remaining, this.input.length);
    if (n > 0) {
      const body = this.body;
      if (!chunk.refusal && body) body.framer.feed(this.input, 0, n, (c) => this.onBodyBytes(body, c));
      this.consume(n);
      chunk.remaining -= n;
    }
    if (this.phase !== 'closed' && chunk.remaining === 0) this.endChunk();
    return true;
  }

  private endChunk(): void {
    const chunk = this.chunk;
    if (!chunk) return;
    this.chunk = null;
    this.mode = 'command';
    this.currentVerb = 'BDAT';
    if (chunk.refusal) {
      this.send(chunk.refusal);
      if (this.errors >= this.limits.maxErrors) this.closeWith('session.too-many-errors', 'too-many-errors');
      return;
    }
    const body = this.body;
    if (!body) return;
    if (!chunk.last) {
      this.sendId('bdat.chunk-received', { size: chunk.size });
      return;
    }
    body.framer.finish((c) => this.onBodyBytes(body, c));
    this.endOfMessage(body);
  }

  // ── Transaction bookkeeping ────────────────────────────────────────────────────────────────

  private abortMessage(reason: MessageAbortReason): void {
    if (this.body || this.pending?.kind === 'message-end') {
      this.body = null;
      this.events.push({ type: 'message-aborted', reason });
    }
    this.mode = 'command';
    this.chunk = null;
  }

  private resetTransaction(): void {
    const had = this.tx !== null || this.body !== null;
    this.abortMessage('rejected');
    this.tx = null;
    if (had) this.events.push({ type: 'transaction-reset' });
  }

  /**
   * The TLS handshake after STARTTLS completed. RFC 3207 §4.2: the server discards any
   * knowledge obtained from the client (HELO name, transaction, authentication); the client
   * starts again with EHLO.
   */
  tlsEstablished(): void {
    if (this.phase === 'closed') return;
    this.tlsUpgrading = false;
    this.tlsActive = true;
    this.input = Buffer.alloc(0);
    this.resetTransaction();
    this.heloName = null;
    this.extended = false;
    this.authenticatedAs = null;
    this.phase = 'fresh';
  }

  get isTlsActive(): boolean {
    return this.tlsActive;
  }

  /** The authenticated identity (RFC 4954), or null. */
  get authenticatedUser(): string | null {
    return this.authenticatedAs;
  }

  /** Whether the client used EHLO (and so may use the service extensions). */
  get isExtended(): boolean {
    return this.extended;
  }
}

function formatAddress(m: Mailbox): string {
  return m.domain ? `${m.localPart}@${m.domain}` : m.localPart;
}
