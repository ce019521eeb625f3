/**
 * The mailbox layer's verdict on a recipient: a pure function from a directory lookup, the
 * `over_quota` setting, the declared size and the mailboxes' usage to one catalogue reply.
 *
 *   lookup                      reply id                  code  enh.   class
 *   user, active, fits          rcpt.ok                   250   2.1.5  accept  {address}: the RCPT address
 *   forward (mode forward)      rcpt.forward              251   2.1.5  accept  {address}: the new address
 *   forward (mode refer)        rcpt.refer                551   5.1.6  hard    {address}: the new address
 *   unknown                     rcpt.unknown-user         550   5.1.1  hard
 *   user, disabled              rcpt.mailbox-disabled     550   5.2.1  hard
 *   user, locked                rcpt.mailbox-locked       450   4.2.1  soft
 *   over quota, soft            rcpt.over-quota-soft      452   4.2.2  soft
 *   over quota, hard            rcpt.over-quota-hard      552   5.2.2  hard
 *   tempfail                    rcpt.lookup-tempfail      451   4.4.3  soft
 *   loop                        local-error               451   4.3.0  soft
 *   not-local                   null: not the mailbox layer's business (relay rules decide)
 *
 * Over quota: `used + size > quota`, where size is the declared SIZE — and a message always has
 * at least one byte, so without SIZE a mailbox exactly at its quota is full.
 *
 * Aliases: each final target gets its own verdict (a mailbox as a user above; a remote address
 * is accepted — relay and access rules for it are the policy's; an unknown local target is
 * rcpt.unknown-user; a refer target is rcpt.refer). The alias is accepted (rcpt.ok) when at
 * least one target would be; otherwise it gets the first soft refusal (the sender retries, the
 * target may recover), else the first hard one. Targets that fail at delivery get their own
 * outcome there.
 *
 * Why an alias (or forwarding) loop is `local-error` 451 4.3.0: a loop says nothing about the
 * recipient — it is an error in our own users file, which RFC 3463 calls "other or undefined
 * mail system status" (X.3.0) and the catalogue "local error in processing". 550 5.1.1 would
 * tell the sender the address does not exist, which is false; the catalogue has no 5.4.6
 * ("routing loop detected") reply for RCPT. A transient reply loses nothing: the directory
 * reports the loop as a warning when the file loads, the administrator fixes the file, the
 * directory reloads it without a restart, and the sender's next retry is accepted. Left
 * unfixed, the sender's own queue lifetime turns it into a bounce.
 */
import type { OverQuotaMode } from '../config/mailboxes-schema.js';
import type { AliasTarget, LookupResult, MailboxUser } from './user-directory.js';
import type { ReplyId } from '../smtp/reply-catalogue.js';
import { reply, type Reply, type ReplyVars } from '../smtp/reply.js';

export const RECIPIENT_REPLY_IDS = [
  'rcpt.ok', 'rcpt.forward', 'rcpt.refer', 'rcpt.unknown-user', 'rcpt.mailbox-disabled',
  'rcpt.mailbox-locked', 'rcpt.over-quota-soft', 'rcpt.over-quota-hard', 'rcpt.lookup-tempfail',
  'local-error',
] as const satisfies readonly ReplyId[];

export type RecipientReplyId = (typeof RECIPIENT_REPLY_IDS)[number];

/** The reply to an address whose aliases or forwards loop (see the module comment). */
export const LOOP_REPLY_ID: RecipientReplyId = 'local-error';

export type RecipientReason =
  | 'user' | 'alias' | 'forward' | 'refer' | 'unknown' | 'disabled' | 'locked' | 'over-quota' | 'loop' | 'tempfail';

export interface RecipientVerdict {
  readonly replyId: RecipientReplyId;
  /** Variables of the reply text (`{address}` for rcpt.ok, rcpt.forward, rcpt.refer). */
  readonly vars: ReplyVars;
  /** accept: 250/251, the recipient is taken; soft: 4xx; hard: 5xx. */
  readonly class: 'accept' | 'soft' | 'hard';
  readonly reason: RecipientReason;
}

export interface RecipientCheckInput {
  readonly lookup: LookupResult;
  readonly overQuota: OverQuotaMode;
  /** MAIL FROM's SIZE= (RFC 1870), or null; at delivery time, the message's real size. */
  readonly declaredSize: number | null;
  /**
   * Bytes in use per mailbox, by MailboxUser.key, for the mailboxes the lookup names. A mailbox
   * with a quota that is missing here is not checked (e.g. transport lmtp: the store checks).
   */
  readonly usage?: ReadonlyMap<string, number>;
}

/** `used + size > quota`; a message has at least one byte, whatever SIZE says. */
export function exceedsQuota(used: number, size: number | null, quota: number | null): boolean {
  if (quota === null) return false;
  return used + Math.max(size ?? 0, 1) > quota;
}

function verdict(replyId: RecipientReplyId, reason: RecipientReason, vars: ReplyVars = {}): RecipientVerdict {
  const cls = replyId === 'rcpt.ok' || replyId === 'rcpt.forward' ? 'accept' : classOf(replyId);
  return { replyId, vars, class: cls, reason };
}

function classOf(replyId: RecipientReplyId): 'soft' | 'hard' {
  return reply(replyId).code >= 500 ? 'hard' : 'soft';
}

/** The verdict for a mailbox that is over quota, per the over_quota setting. */
export function overQuotaVerdict(mode: OverQuotaMode): RecipientVerdict {
  return verdict(mode === 'hard' ? 'rcpt.over-quota-hard' : 'rcpt.over-quota-soft', 'over-quota');
}

function mailboxVerdict(user: MailboxUser, address: string, input: RecipientCheckInput): RecipientVerdict {
  if (user.status === 'disabled') return verdict('rcpt.mailbox-disabled', 'disabled');
  if (user.status === 'locked') return verdict('rcpt.mailbox-locked', 'locked');
  const used = input.usage?.get(user.key);
  if (used !== undefined && exceedsQuota(used, input.declaredSize, user.quota)) return overQuotaVerdict(input.overQuota);
  return verdict('rcpt.ok', 'user', { address });
}

function targetVerdict(target: AliasTarget, input: RecipientCheckInput): RecipientVerdict {
  switch (target.kind) {
    case 'mailbox': return mailboxVerdict(target.user, target.address, input);
    case 'remote': return verdict('rcpt.ok', 'alias', { address: target.address });
    case 'unknown': return verdict('rcpt.unknown-user', 'unknown');
    case 'refer': return verdict('rcpt.refer', 'refer', { address: target.to });
  }
}

/** The verdict on one RCPT (or, with the real size, one local delivery); null for not-local. */
export function recipientVerdict(input: RecipientCheckInput): RecipientVerdict | null {
  const { lookup } = input;
  switch (lookup.kind) {
    case 'user':
      return mailboxVerdict(lookup.user, lookup.address, input);
    case 'alias': {
      const verdicts = lookup.targets.map((t) => targetVerdict(t, input));
      if (verdicts.some((v) => v.class === 'accept')) return verdict('rcpt.ok', 'alias', { address: lookup.address });
      return verdicts.find((v) => v.class === 'soft') ?? verdicts[0] ?? verdict('rcpt.unknown-user', 'unknown');
    }
    case 'forward':
      return lookup.mode === 'forward'
        ? verdict('rcpt.forward', 'forward', { address: lookup.to })
        : verdict('rcpt.refer', 'refer', { address: lookup.to });
    case 'loop':
      return verdict(LOOP_REPLY_ID, 'loop');
    case 'unknown':
      return verdict('rcpt.unknown-user', 'unknown');
    case 'tempfail':
      return verdict('rcpt.lookup-tempfail', 'tempfail');
    case 'not-local':
      return null;
  }
}

/** The catalogue reply of a verdict (policies may still apply their overrides to it). */
export function verdictReply(v: RecipientVerdict): Reply {
  return reply(v.replyId, v.vars);
}

/** The mailboxes a lookup would deliver to (whose usage a quota check needs), each once. */
export function mailboxesOf(lookup: LookupResult): MailboxUser[] {
  if (lookup.kind === 'user') return [lookup.user];
  if (lookup.kind === 'alias') return lookup.targets.flatMap((t) => (t.kind === 'mailbox' ? [t.user] : []));
  return [];
}
