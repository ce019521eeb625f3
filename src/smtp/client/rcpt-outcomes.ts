/**
 * The per-recipient results of one client transaction, in command order. Each recipient ends
 * with exactly one decisive fact: the reply that settled it (MAIL, RCPT, DATA or end of data,
 * or per recipient after end of data in LMTP, RFC 2033 §4.2), the session failure that cut the
 * transaction short, or the client's own refusal to send. What the fact means (delivered, soft,
 * hard) is decided elsewhere (src/bounce/classify-reply.ts), not here.
 */
import type { ServerReply } from '../reply-parser.js';
import type { DecisiveFact, TransactionOutcome, RecipientOutcome } from './client-events.js';

export type { DecisiveFact, TransactionOutcome, RecipientOutcome };

function positive(r: ServerReply): boolean {
  return r.code >= 200 && r.code < 300;
}

/** Collects a transaction's replies as they arrive. */
export class RcptOutcomes {
  private mail: ServerReply | null = null;
  private readonly rcpt: (ServerReply | null)[];
  private readonly result: (DecisiveFact | null)[];
  /** Accepted recipients still waiting for their own reply after end of data (LMTP). */
  private lmtpQueue: number[] = [];

  constructor(
    readonly count: number,
    readonly dsnPassedOn: boolean,
  ) {
    this.rcpt = new Array<ServerReply | null>(count).fill(null);
    this.result = new Array<DecisiveFact | null>(count).fill(null);
  }

  /** MAIL answered; a refusal settles every recipient. Returns whether MAIL was accepted. */
  onMail(reply: ServerReply): boolean {
    this.mail = reply;
    if (positive(reply)) return true;
    this.settleOpen({ kind: 'reply', command: 'MAIL', reply });
    return false;
  }

  /** RCPT for recipient `index` answered; a refusal settles it. */
  onRcpt(index: number, reply: ServerReply): void {
    if (this.result[index] !== null) return; // MAIL was refused already: its reply decides
    this.rcpt[index] = reply;
    if (!positive(reply)) this.result[index] = { kind: 'reply', command: 'RCPT', reply };
  }

  /** Recipients whose RCPT was accepted and who have no result yet. */
  acceptedOpen(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) {
      const r = this.rcpt[i];
      if (this.result[i] === null && r !== null && positive(r)) out.push(i);
    }
    return out;
  }

  /** DATA refused (not 354): the accepted recipients get that reply. */
  onDataRefused(reply: ServerReply): void {
    for (const i of this.acceptedOpen()) this.result[i] = { kind: 'reply', command: 'DATA', reply };
  }

  /** SMTP end of data: one reply for every accepted recipient (RFC 5321 §4.1.1.4). */
  onEndOfData(reply: ServerReply): void {
    for (const i of this.acceptedOpen()) this.result[i] = { kind: 'reply', command: 'END-OF-DATA', reply };
  }

  /** LMTP: from now on each reply answers the next accepted recipient, in RCPT order. */
  expectLmtpReplies(): number {
    this.lmtpQueue = this.acceptedOpen();
    return this.lmtpQueue.length;
  }

  /** One LMTP end-of-data reply (RFC 2033 §4.2). Returns how many are still expected. */
  onLmtpReply(reply: ServerReply): number {
    const i = this.lmtpQueue.shift();
    if (i !== undefined) this.result[i] = { kind: 'reply', command: 'END-OF-DATA', reply };
    return this.lmtpQueue.length;
  }

  /** Everybody without a result gets `fact` (a 421, a lost connection, a timeout…). */
  settleOpen(fact: DecisiveFact): void {
    for (let i = 0; i < this.count; i++) if (this.result[i] === null) this.result[i] = fact;
    this.lmtpQueue = [];
  }

  get settled(): boolean {
    return this.result.every((r) => r !== null);
  }

  outcome(): TransactionOutcome {
    const recipients: RecipientOutcome[] = this.result.map((result, index) => ({
      index,
      rcpt: this.rcpt[index],
      result: result ?? {
        kind: 'failure',
        failure: { kind: 'protocol', command: null, detail: 'transaction ended without a reply for this recipient' },
      },
    }));
    return { mail: this.mail, recipients, dsnPassedOn: this.dsnPassedOn };
  }
}
