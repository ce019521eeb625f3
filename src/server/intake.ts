/**
 * Intake: what the receiving server does with one session's decisions. It asks the policy,
 * streams the body into the store and answers "250 queued" only after the store's commit
 * resolved (DESIGN.md rule 2). Store trouble becomes a 4xx from the catalogue, never a 250.
 */
import type { Logger } from 'pino';
import { reply } from '../smtp/reply.js';
import type { ServerSession } from '../smtp/server/server-session.js';
import type { Verdict } from '../smtp/server/server-events.js';
import type { MailParams, RcptParams } from '../smtp/esmtp-params.js';
import type { Mailbox } from '../smtp/mailbox.js';
import { formatMailbox } from '../smtp/mailbox.js';
import type { MessageCheck, MessageCheckResult, SessionPolicy } from '../policy/session-policy.js';
import { StoreError, type IncomingMessage, type QueueStore } from '../store/queue-store.js';
import type { Envelope } from '../store/queue-types.js';
import { receivedHeader } from './received-header.js';
import { sameAddress, type Authenticator } from './authenticator.js';
import { HeaderFieldFilter, isAuthenticationResultsOf } from '../smtp/header-filter.js';
import { normalizeDomain, unquoteLocalPart } from '../policy/recipient-access-table.js';
import type { SessionObserver } from './session-observer.js';
import type { Reply } from '../smtp/reply.js';

export interface IntakeContext {
  readonly sessionId: string;
  readonly hostname: string;
  readonly listener: string;
  readonly ip: string;
  readonly port: number;
  readonly store: QueueStore;
  readonly policy: SessionPolicy;
  readonly log: Logger;
  readonly clock: () => number;
  /** Status lines for HELP STATUS. */
  readonly status: () => string[];
  readonly tls: () => { version: string; cipher: string } | null;
  /** Checks AUTH credentials; null when this listener offers no AUTH. */
  readonly authenticator?: Authenticator | null;
  /** Delay before answering a failed AUTH, per failure so far in this session (slows guessing). */
  readonly authFailureDelayMs?: number;
  /** An authenticated client's MAIL FROM must belong to its user (553 5.7.1); default true. */
  readonly senderLoginMatch?: boolean;
  /** The session's header limit: how much header the Authentication-Results filter holds at most. */
  readonly maxHeaderBytes?: number;
  /** Metrics: replies by stage and code. */
  readonly observer?: SessionObserver | null;
}

const accept: Verdict = { kind: 'accept' };

function storeFailure(err: unknown): Verdict {
  const noSpace = err instanceof StoreError && err.kind === 'no-space';
  return { kind: 'reject', reply: reply(noSpace ? 'storage.insufficient' : 'local-error') };
}

export class Intake {
  private message: IncomingMessage | null = null;
  private writeError: unknown = null;
  /** Sender authentication of the message in progress (fed as it arrives), or null. */
  private check: MessageCheck | null = null;
  /** Drops Authentication-Results fields forged in our name from checked messages (RFC 8601 §5). */
  private headerFilter: HeaderFieldFilter | null = null;
  /** The greeting has been answered (its reply is the connection decision). */
  private greeted = false;
  /** The RCPT whose reply comes next, with its sender (for tracking). */
  private pendingRcpt: { recipient: string; sender: string } | null = null;

  constructor(private readonly ctx: IntakeContext) {}

  connect(): Verdict | Promise<Verdict> {
    return this.ctx.policy.connect();
  }

  helo(verb: 'HELO' | 'EHLO', domain: string): Verdict | Promise<Verdict> {
    return this.ctx.policy.helo(verb, domain);
  }

  mail(session: ServerSession, reversePath: Mailbox | null, params: MailParams): Verdict | Promise<Verdict> {
    // RFC 1870 §6.2: a declared size the store cannot take now is a transient refusal.
    if (!this.ctx.store.admission(params.size).ok) {
      return { kind: 'reject', reply: reply('storage.insufficient') };
    }
    const authenticatedUser = this.authenticatedUser(session);
    const ask = (): Verdict | Promise<Verdict> => this.ctx.policy.mail({ helo: session.helo, reversePath, params, authenticatedUser });
    // An authenticated client sends as its own user only (the null sender is always allowed, as
    // Postfix's reject_sender_login_mismatch allows it): checked before the policy counts the MAIL.
    if (authenticatedUser === null || reversePath === null || this.ctx.senderLoginMatch === false) return ask();
    const address = `${unquoteLocalPart(reversePath.localPart)}@${normalizeDomain(reversePath.domain)}`;
    const owns = this.ctx.authenticator?.ownsAddress?.(authenticatedUser, address) ?? sameAddress(authenticatedUser, address);
    const decide = (ok: boolean): Verdict | Promise<Verdict> => {
      if (ok) return ask();
      this.ctx.log.warn({ session: this.ctx.sessionId, user: authenticatedUser, from: address, client: this.ctx.ip }, 'sender not owned by the authenticated user');
      const vars = { user: authenticatedUser };
      return { kind: 'reject', reply: this.ctx.policy.reply?.('auth.sender-mismatch', vars) ?? reply('auth.sender-mismatch', vars) };
    };
    return owns instanceof Promise ? owns.then(decide) : decide(owns);
  }

  /** The user this session authenticated as (the directory's name for it), or null. */
  private authenticatedUser(session: ServerSession): string | null {
    // The session forgets an AUTH on STARTTLS (RFC 3207 §4.2); so does this.
    return session.authenticatedUser === null ? null : this.authUser ?? session.authenticatedUser;
  }

  rcpt(session: ServerSession, forwardPath: Mailbox, rcptParams: RcptParams): Verdict | Promise<Verdict> {
    const tx = session.transaction;
    if (!tx) return { kind: 'reject', reply: reply('local-error') };
    this.pendingRcpt = { recipient: formatMailbox(forwardPath), sender: formatMailbox(tx.reversePath) };
    return this.ctx.policy.rcpt({
      helo: session.helo,
      reversePath: tx.reversePath,
      params: tx.params,
      forwardPath,
      rcptParams,
      accepted: tx.recipients.length,
      authenticatedUser: this.authenticatedUser(session),
    });
  }

  /** DATA or the first BDAT: check space, open the store's message, write the trace header. */
  dataStart(session: ServerSession): Verdict {
    const tx = session.transaction;
    if (!tx) return { kind: 'reject', reply: reply('local-error') };
    if (!this.ctx.store.admission(tx.params.size).ok) {
      return { kind: 'reject', reply: reply('storage.insufficient') };
    }
    try {
      this.writeError = null;
      this.message = this.ctx.store.beginMessage();
      this.message.write(Buffer.from(receivedHeader({
        helo: session.helo,
        rdns: this.ctx.policy.rdns,
        ip: this.ctx.ip,
        hostname: this.ctx.hostname,
        extended: session.isExtended,
        smtputf8: tx.params.smtputf8,
        tls: this.ctx.tls(),
        authenticated: session.authenticatedUser !== null,
        queueId: this.message.id,
        recipients: tx.recipients.map((r) => formatMailbox(r.mailbox)),
        date: new Date(this.ctx.clock()),
      }), 'utf8'));
      // Our Received header is ours: the checks see the message as the client sent it.
      this.check = this.ctx.policy.messageCheck?.({
        helo: session.helo, reversePath: tx.reversePath, params: tx.params, authenticatedUser: this.authenticatedUser(session),
      }) ?? null;
      // Where we vouch for the results, nobody else may speak in our name.
      this.headerFilter = this.check
        ? new HeaderFieldFilter(isAuthenticationResultsOf(this.ctx.hostname), this.ctx.maxHeaderBytes ?? 1024 * 1024)
        : null;
      return accept;
    } catch (err) {
      this.ctx.log.error({ session: this.ctx.sessionId, err }, 'store: cannot begin message');
      this.discard();
      return storeFailure(err);
    }
  }

  body(chunk: Buffer): void {
    if (!this.message || this.writeError) return;
    // The checks see the message as sent; the store gets it without forged results.
    this.check?.write(chunk);
    try {
      if (this.headerFilter === null) this.message.write(chunk);
      else for (const part of this.headerFilter.write(chunk)) this.message.write(part);
    } catch (err) {
      // Keep reading the data; the end of data gets the 4xx.
      this.writeError = err;
    }
  }

  /** The content checks have more body bytes waiting than they may hold: stop reading for now. */
  get bodyBacklogged(): boolean {
    return this.check?.backlogged ?? false;
  }

  /** Resolves when the content checks have caught up (at once when they are not behind). */
  bodyDrained(): Promise<void> {
    return this.check?.drained?.() ?? Promise.resolve();
  }

  async messageEnd(session: ServerSession): Promise<Verdict> {
    const msg = this.message;
    const tx = session.transaction;
    const check = this.check;
    this.message = null;
    this.check = null;
    if (!msg || !tx) {
      check?.abort();
      return { kind: 'reject', reply: reply('local-error') };
    }
    if (this.writeError) {
      const err = this.writeError;
      this.ctx.log.error({ session: this.ctx.sessionId, queue_id: msg.id, err }, 'store: write failed');
      msg.abort();
      check?.abort();
      return storeFailure(err);
    }
    const filter = this.headerFilter;
    this.headerFilter = null;
    try {
      for (const part of filter?.end() ?? []) msg.write(part);
    } catch (err) {
      this.ctx.log.error({ session: this.ctx.sessionId, queue_id: msg.id, err }, 'store: write failed');
      msg.abort();
      check?.abort();
      return storeFailure(err);
    }
    if (filter && filter.dropped > 0) {
      this.ctx.log.info({ session: this.ctx.sessionId, queue_id: msg.id, dropped: filter.dropped }, 'dropped Authentication-Results claiming our authserv-id');
    }
    let checked: MessageCheckResult | null = null;
    if (check) {
      try {
        checked = await check.finish();
      } catch (err) {
        // A check that breaks (not a DNS answer: those are results) defers the message, never loses it.
        this.ctx.log.error({ session: this.ctx.sessionId, queue_id: msg.id, err }, 'sender authentication failed');
        msg.abort();
        return { kind: 'reject', reply: reply('local-error') };
      }
      if (checked.verdict.kind !== 'accept') {
        const r = checked.verdict.kind === 'reject' ? checked.verdict.reply : null;
        this.ctx.log.info({ session: this.ctx.sessionId, client: this.ctx.ip, reply: r ? `${r.code} ${r.enhanced ?? ''}` : null }, 'refused by sender authentication');
        msg.abort();
        return checked.verdict;
      }
    }
    const envelope: Envelope = {
      sender: formatMailbox(tx.reversePath),
      recipients: tx.recipients.map((r) => ({
        address: formatMailbox(r.mailbox),
        notify: r.params.notify,
        orcpt: r.params.orcpt,
      })),
      ret: tx.params.ret,
      envid: tx.params.envid,
      body: tx.params.body,
      smtputf8: tx.params.smtputf8,
      client: {
        ip: this.ctx.ip,
        port: this.ctx.port,
        helo: session.helo ?? '',
        listener: this.ctx.listener,
        senderGroup: this.ctx.policy.senderGroup,
        policy: this.ctx.policy.policyName,
        rdns: this.ctx.policy.rdns,
        tls: this.ctx.tls(),
        authenticatedUser: session.authenticatedUser,
      },
      sessionId: this.ctx.sessionId,
      receivedAt: this.ctx.clock(),
    };
    try {
      await msg.commit(envelope, checked === null ? {} : { prepend: Buffer.from(checked.header, 'utf8'), hold: checked.hold });
    } catch (err) {
      this.ctx.log.error({ session: this.ctx.sessionId, queue_id: msg.id, err }, 'store: commit failed');
      msg.abort();
      return storeFailure(err);
    }
    this.ctx.policy.messageAccepted?.(envelope.recipients.length);
    this.ctx.log.info({
      session: this.ctx.sessionId,
      queue_id: msg.id,
      from: envelope.sender,
      nrcpt: envelope.recipients.length,
      size: msg.size,
      client: this.ctx.ip,
      sender_group: envelope.client.senderGroup,
      policy: envelope.client.policy,
      ...(checked?.hold ? { held: true } : {}),
    }, checked?.hold ? 'queued and held (quarantine)' : 'queued');
    return { kind: 'accept', reply: reply('data.queued', { id: msg.id }) };
  }

  /**
   * Every reply the session sent: counted by stage and code, and the connection decision and each
   * RCPT reply recorded as tracking events (before there is a queue id, by session id).
   */
  replied(command: string | null, r: Reply): void {
    const connection = !this.greeted && command === null;
    this.ctx.observer?.replied?.(connection ? 'CONNECT' : command ?? 'OTHER', r.code);
    const text = [String(r.code), r.enhanced ?? '', r.lines[0] ?? ''].filter((p) => p !== '').join(' ');
    const outcome = r.code < 400 ? 'accepted' : 'rejected';
    if (connection) {
      this.greeted = true;
      const p = this.ctx.policy;
      this.ctx.store.recordEvents([{
        kind: 'connection', at: this.ctx.clock(), sessionId: this.ctx.sessionId, outcome, reply: text,
        detail: { client: this.ctx.ip, port: this.ctx.port, listener: this.ctx.listener, senderGroup: p.senderGroup, policy: p.policyName, rdns: p.rdns },
      }]);
    } else if (command === 'RCPT' && this.pendingRcpt !== null) {
      const { recipient, sender } = this.pendingRcpt;
      this.pendingRcpt = null;
      this.ctx.store.recordEvents([{
        kind: 'rcpt', at: this.ctx.clock(), sessionId: this.ctx.sessionId, sender, recipient, outcome, reply: text,
        detail: { client: this.ctx.ip },
      }]);
    }
  }

  /** STARTTLS: 220 when the listener has a certificate loaded, else 454 4.7.0 (RFC 3207 §4). */
  starttls(available: boolean): Verdict {
    return available ? accept : { kind: 'reject', reply: reply('tls.unavailable') };
  }

  private authFailures = 0;
  /** The directory's name for the user of the last successful AUTH. */
  private authUser: string | null = null;

  async auth(mechanism: string, username: string, password: string, authzid: string): Promise<Verdict> {
    // An IP that failed too often lately is refused before its credentials are even checked.
    const gate = await this.ctx.policy.authStart?.();
    if (gate && gate.kind !== 'accept') {
      this.ctx.log.warn({ session: this.ctx.sessionId, mechanism, client: this.ctx.ip }, 'authentication refused: too many failures from this address');
      return gate;
    }
    const authenticator = this.ctx.authenticator;
    const result = authenticator ? await authenticator.verify(username, password) : { kind: 'invalid' as const };
    // RFC 4616 §2: an authzid other than the user itself is not supported here.
    if (result.kind === 'ok' && (authzid === '' || authzid === username)) {
      this.ctx.log.info({ session: this.ctx.sessionId, mechanism, user: result.user }, 'authenticated');
      this.authUser = result.user;
      this.ctx.policy.authCleared?.();
      return { kind: 'accept' };
    }
    if (result.kind === 'temporary') {
      this.ctx.policy.authCleared?.();
      return { kind: 'reject', reply: reply('auth.temporary-failure') };
    }
    this.authFailures++;
    this.ctx.log.warn({ session: this.ctx.sessionId, mechanism, user: username, client: this.ctx.ip, failures: this.authFailures }, 'authentication failed');
    // Per client IP across sessions when the policy counts it, else per session.
    const throttle = await this.ctx.policy.authFailed?.();
    const delay = throttle ? throttle.delayMs : (this.ctx.authFailureDelayMs ?? 1000) * this.authFailures;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    return throttle?.verdict ?? { kind: 'reject', reply: reply('auth.invalid-credentials') };
  }

  status(): Verdict {
    const lines = this.ctx.status();
    return { kind: 'accept', reply: reply('help.status', { status: lines[0] ?? '' }, lines.slice(1)) };
  }

  /** The message in progress is abandoned (rejected, reset, or the connection went away). */
  discard(): void {
    const msg = this.message;
    this.message = null;
    this.writeError = null;
    msg?.abort();
    this.check?.abort();
    this.check = null;
    this.headerFilter = null;
  }
}
