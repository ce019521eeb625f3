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
import type { SessionPolicy } from '../policy/session-policy.js';
import { StoreError, type IncomingMessage, type QueueStore } from '../store/queue-store.js';
import type { Envelope } from '../store/queue-types.js';
import { receivedHeader } from './received-header.js';
import type { Authenticator } from './authenticator.js';

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
}

const accept: Verdict = { kind: 'accept' };

function storeFailure(err: unknown): Verdict {
  const noSpace = err instanceof StoreError && err.kind === 'no-space';
  return { kind: 'reject', reply: reply(noSpace ? 'storage.insufficient' : 'local-error') };
}

export class Intake {
  private message: IncomingMessage | null = null;
  private writeError: unknown = null;

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
    return this.ctx.policy.mail({ helo: session.helo, reversePath, params });
  }

  rcpt(session: ServerSession, forwardPath: Mailbox, rcptParams: RcptParams): Verdict | Promise<Verdict> {
    const tx = session.transaction;
    if (!tx) return { kind: 'reject', reply: reply('local-error') };
    return this.ctx.policy.rcpt({
      helo: session.helo,
      reversePath: tx.reversePath,
      params: tx.params,
      forwardPath,
      rcptParams,
      accepted: tx.recipients.length,
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
      return accept;
    } catch (err) {
      this.ctx.log.error({ session: this.ctx.sessionId, err }, 'store: cannot begin message');
      this.discard();
      return storeFailure(err);
    }
  }

  body(chunk: Buffer): void {
    if (!this.message || this.writeError) return;
    try {
      this.message.write(chunk);
    } catch (err) {
      // Keep reading the data; the end of data gets the 4xx.
      this.writeError = err;
    }
  }

  async messageEnd(session: ServerSession): Promise<Verdict> {
    const msg = this.message;
    const tx = session.transaction;
    this.message = null;
    if (!msg || !tx) return { kind: 'reject', reply: reply('local-error') };
    if (this.writeError) {
      const err = this.writeError;
      this.ctx.log.error({ session: this.ctx.sessionId, queue_id: msg.id, err }, 'store: write failed');
      msg.abort();
      return storeFailure(err);
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
      },
      sessionId: this.ctx.sessionId,
      receivedAt: this.ctx.clock(),
    };
    try {
      await msg.commit(envelope);
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
    }, 'queued');
    return { kind: 'accept', reply: reply('data.queued', { id: msg.id }) };
  }

  /** STARTTLS: 220 when the listener has a certificate loaded, else 454 4.7.0 (RFC 3207 §4). */
  starttls(available: boolean): Verdict {
    return available ? accept : { kind: 'reject', reply: reply('tls.unavailable') };
  }

  private authFailures = 0;

  async auth(mechanism: string, username: string, password: string, authzid: string): Promise<Verdict> {
    const authenticator = this.ctx.authenticator;
    const result = authenticator ? await authenticator.verify(username, password) : { kind: 'invalid' as const };
    // RFC 4616 §2: an authzid other than the user itself is not supported here.
    if (result.kind === 'ok' && (authzid === '' || authzid === username)) {
      this.ctx.log.info({ session: this.ctx.sessionId, mechanism, user: result.user }, 'authenticated');
      return { kind: 'accept' };
    }
    if (result.kind === 'temporary') return { kind: 'reject', reply: reply('auth.temporary-failure') };
    this.authFailures++;
    this.ctx.log.warn({ session: this.ctx.sessionId, mechanism, user: username, client: this.ctx.ip, failures: this.authFailures }, 'authentication failed');
    const delay = (this.ctx.authFailureDelayMs ?? 1000) * this.authFailures;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    return { kind: 'reject', reply: reply('auth.invalid-credentials') };
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
  }
}
