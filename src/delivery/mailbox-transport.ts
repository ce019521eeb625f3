/**
 * Local delivery through the mailbox layer: the users file decides what becomes of each
 * recipient of a local domain when its turn comes (the file may have changed since RCPT):
 *
 *   lookup                   outcome                                               status
 *   user, active             into its Maildir (quota checked under the Maildir's   delivered 2.0.0
 *                            lock, with the message's real size)
 *     over quota             over_quota: soft → retried; hard → a DSN now           4.2.2 / 5.2.2
 *   user, disabled           hard                                                   5.2.1
 *   user, locked             soft (retried)                                         4.2.1
 *   alias                    expanded: a copy goes to its final targets             delivered ("expanded")
 *   forward (mode forward)   relayed: a copy goes to the new address                delivered ("relayed")
 *   forward (mode refer)     hard                                                   5.1.6
 *   unknown, not local       hard                                                   5.1.1
 *   lookup failed            soft                                                   4.4.3
 *   alias or forward loop    soft (local-error; see recipient-check.ts for why)     4.3.0
 *
 * Expansion does not deliver here: the fact names the targets, and the outcome recorder queues
 * the copy in the same store transaction that marks this recipient done — so each target gets
 * its own retries and DSNs, and a crash never loses or doubles the expansion. The copy starts
 * with `Delivered-To: <this address>`; a message that comes back to an address it was already
 * expanded for (a loop through another system) is refused, 5.4.6, as Postfix does.
 *
 * An alias or forward that would send to an address on the recipient block list is refused as a
 * whole (5.7.1), as it is at RCPT.
 */
import { HeaderCollector } from '../bounce/dsn-report.js';
import type { DeliveryFact } from '../bounce/delivery-fact.js';
import type { OverQuotaMode } from '../config/mailboxes-schema.js';
import { deliveryOutcome, type MailboxDelivery } from '../mailbox/mailbox-delivery.js';
import { recipientVerdict, verdictReply, type RecipientVerdict } from '../mailbox/recipient-check.js';
import type { LookupResult } from '../mailbox/user-directory.js';
import { reply as catalogueReply, type Reply } from '../smtp/reply.js';
import { localWriteFailure, type LocalDelivery, type LocalTransport } from './maildir-deliverer.js';

export interface MailboxTransportOptions {
  /** The user directory (src/mailbox/user-directory.ts), as loaded now. */
  readonly directory: { lookup(address: string): LookupResult };
  /** Maildir writing with quota (mailboxes.path). */
  readonly mailboxes: MailboxDelivery;
  readonly overQuota: OverQuotaMode;
  /** `recipients.blocked`: true for an address mail must never be sent to. */
  readonly isBlocked?: (address: string) => boolean;
  /** Header bytes read to look for Delivered-To loops. Default 1 MiB. */
  readonly maxHeaderBytes?: number;
}

/** One line of a reply: "552 5.2.2 Recipient address rejected: Mailbox full". */
function replyLine(r: Reply): string {
  return `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${r.lines.join(' ')}`;
}

function refusedBy(r: Reply, outcome: 'soft' | 'hard', detail?: string): DeliveryFact {
  return {
    kind: 'local-refused', outcome, status: r.enhanced ?? (outcome === 'hard' ? '5.0.0' : '4.0.0'), text: replyLine(r),
    ...(detail === undefined ? {} : { detail }),
  };
}

function refused(v: RecipientVerdict, detail?: string): DeliveryFact {
  return refusedBy(verdictReply(v), v.class === 'hard' ? 'hard' : 'soft', detail);
}

/** The value of each `Delivered-To:` field of a header section, lower case. */
export function deliveredToValues(header: Buffer): string[] {
  const text = header.toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^Delivered-To:\s*<?([^>\s]*)>?\s*$/i.exec(line);
    if (m) out.push(m[1].toLowerCase());
  }
  return out;
}

export class MailboxTransport implements LocalTransport {
  constructor(private readonly opts: MailboxTransportOptions) {}

  async deliver(d: LocalDelivery): Promise<DeliveryFact> {
    const lookup = this.opts.directory.lookup(d.recipient);
    try {
      switch (lookup.kind) {
        case 'user':
          return await this.toMailbox(d, lookup);
        case 'alias': {
          const v = recipientVerdict({ lookup, overQuota: this.opts.overQuota, declaredSize: null });
          if (v !== null && v.class !== 'accept') return refused(v, `alias ${d.recipient}: none of its targets can take mail now`);
          return await this.expand(d, 'alias', lookup.targets.map((t) => t.address));
        }
        case 'forward':
          if (lookup.mode === 'refer') return refusedBy(catalogueReply('rcpt.refer', { address: lookup.to }), 'hard');
          return await this.expand(d, 'forward', [lookup.to]);
        case 'loop': {
          const v = recipientVerdict({ lookup, overQuota: this.opts.overQuota, declaredSize: null })!;
          return refused(v, `alias or forwarding loop in the users file: ${lookup.chain.join(' → ')}`);
        }
        case 'tempfail':
          return refusedBy(catalogueReply('rcpt.lookup-tempfail'), 'soft', lookup.reason);
        case 'unknown':
        case 'not-local':
          return refusedBy(catalogueReply('rcpt.unknown-user'), 'hard', `no mailbox ${d.recipient}`);
      }
    } catch (err) {
      return localWriteFailure(err);
    }
  }

  private async toMailbox(d: LocalDelivery, lookup: Extract<LookupResult, { kind: 'user' }>): Promise<DeliveryFact> {
    // Status only: the quota is checked by MailboxDelivery under the Maildir's lock, with the real size.
    const v = recipientVerdict({ lookup, overQuota: this.opts.overQuota, declaredSize: null });
    if (v !== null && v.class !== 'accept') return refused(v);
    // RFC 5321 §4.4: the final delivery adds Return-Path; Delivered-To names the mailbox's address.
    const prefix = `Return-Path: <${d.sender}>\r\nDelivered-To: ${d.recipient}\r\n`;
    const result = await this.opts.mailboxes.deliver(lookup.user, d.body(), { prefix });
    const outcome = deliveryOutcome(result, this.opts.overQuota);
    if (outcome.class === 'delivered') return { kind: 'local-delivered', detail: `delivered to maildir ${outcome.path}` };
    return refusedBy(outcome.reply, outcome.class, outcome.detail);
  }

  private async expand(d: LocalDelivery, mode: 'alias' | 'forward', targets: readonly string[]): Promise<DeliveryFact> {
    const blocked = targets.filter((t) => this.opts.isBlocked?.(t) ?? false);
    if (blocked.length > 0) {
      return refusedBy(catalogueReply('rcpt.blocked'), 'hard', `${d.recipient} forwards to ${blocked.join(', ')}, which is on the recipient block list`);
    }
    if ((await this.deliveredTo(d)).includes(d.recipient.toLowerCase())) {
      return { kind: 'local-refused', outcome: 'hard', status: '5.4.6', text: `mail forwarding loop for ${d.recipient}` };
    }
    const what = mode === 'alias' ? `alias expanded to ${targets.length} address${targets.length === 1 ? '' : 'es'}` : 'forwarded';
    return { kind: 'local-expanded', mode, targets, detail: `${what}: ${targets.join(', ')}` };
  }

  /** The Delivered-To addresses of the message's header (lower case). */
  private async deliveredTo(d: LocalDelivery): Promise<string[]> {
    const collector = new HeaderCollector(this.opts.maxHeaderBytes ?? 1024 * 1024);
    for await (const chunk of d.body()) {
      if (collector.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) break;
    }
    return deliveredToValues(collector.headers());
  }
}
