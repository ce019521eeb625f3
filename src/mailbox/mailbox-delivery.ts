/**
 * One message into one user's Maildir, with the quota enforced at delivery time:
 *
 *   1. the body is written to tmp/ and fsync'd (concurrently with other deliveries);
 *   2. under the Maildir's lock: usage from maildirsize; if `used + size > quota` the tmp file
 *      is removed and the result is over-quota (nothing in new/); otherwise the file is moved
 *      into new/, new/ fsync'd, and `<size> 1` appended to maildirsize.
 *
 * Step 2 is serialised per Maildir, so 50 deliveries at once never overshoot the quota and the
 * accounting is exact. {@link deliveryOutcome} turns the result into what the bounce machinery
 * needs: delivered, or soft/hard with the catalogue reply per `over_quota`.
 */
import type { OverQuotaMode } from '../config/mailboxes-schema.js';
import { MailboxQuota, type QuotaOwner } from './mailbox-quota.js';
import { maildirPath } from './mailbox-path.js';
import { MaildirWriter, type MessageBody, type WriteOptions } from './maildir-writer.js';
import { overQuotaVerdict, verdictReply, type RecipientReplyId } from './recipient-check.js';
import type { Reply } from '../smtp/reply.js';

export type MailboxDeliveryResult =
  | { readonly status: 'delivered'; readonly path: string; readonly size: number }
  /** The message would push the mailbox over its quota; nothing was delivered. */
  | { readonly status: 'over-quota'; readonly used: number; readonly quota: number; readonly size: number };

export interface MailboxDeliveryOptions {
  /** mailboxes.path (absolute). */
  readonly root: string;
  /** Host part of Maildir names; default os.hostname(). */
  readonly hostname?: string;
  readonly writer?: MaildirWriter;
  readonly quota?: MailboxQuota;
}

export class MailboxDelivery {
  readonly writer: MaildirWriter;
  readonly quota: MailboxQuota;

  constructor(private readonly options: MailboxDeliveryOptions) {
    this.writer = options.writer ?? new MaildirWriter(options.hostname === undefined ? {} : { hostname: options.hostname });
    this.quota = options.quota ?? new MailboxQuota({ root: options.root });
  }

  maildirOf(user: QuotaOwner): string {
    return maildirPath(this.options.root, user);
  }

  /** Delivers `body` (plus an optional prefix such as Return-Path/Delivered-To) to `user`'s Maildir. */
  async deliver(user: QuotaOwner, body: MessageBody, options: WriteOptions = {}): Promise<MailboxDeliveryResult> {
    const maildir = this.maildirOf(user);
    const pending = await this.writer.writeTmp(maildir, body, options);
    try {
      return await this.quota.withMailboxLock(maildir, async () => {
        if (user.quota !== null) {
          const check = await this.quota.checkLocked(maildir, user.quota, pending.size);
          if (check.status === 'over') {
            await this.writer.discard(pending);
            return { status: 'over-quota', used: check.used, quota: user.quota, size: pending.size } as const;
          }
        }
        const delivered = await this.writer.commit(pending);
        if (user.quota !== null) await this.quota.record(maildir, user.quota, delivered.size, 1);
        return { status: 'delivered', path: delivered.path, size: delivered.size } as const;
      });
    } catch (err) {
      await this.writer.discard(pending).catch(() => undefined);
      throw err;
    }
  }
}

export type LocalDeliveryOutcome =
  | { readonly class: 'delivered'; readonly path: string; readonly size: number }
  /** soft: retry per the bounce profile; hard: a DSN now. `reply` is the diagnostic for the DSN. */
  | { readonly class: 'soft' | 'hard'; readonly replyId: RecipientReplyId; readonly reply: Reply; readonly detail: string };

/**
 * The outcome of a local delivery for the bounce machinery. The class is explicit: a local
 * over-quota with `over_quota: hard` is a hard bounce (552 5.2.2), not the "552 to RCPT is
 * transient" rule of RFC 5321 §4.5.3.1.10 that applies to replies of remote servers.
 */
export function deliveryOutcome(result: MailboxDeliveryResult, overQuota: OverQuotaMode): LocalDeliveryOutcome {
  if (result.status === 'delivered') return { class: 'delivered', path: result.path, size: result.size };
  const v = overQuotaVerdict(overQuota);
  return {
    class: v.class === 'hard' ? 'hard' : 'soft',
    replyId: v.replyId,
    reply: verdictReply(v),
    detail: `mailbox over quota: ${result.used} bytes used + ${result.size} bytes > ${result.quota} bytes quota`,
  };
}
