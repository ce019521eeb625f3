/**
 * The outcome recorder: what a delivery run found out becomes durable state. Each recipient's
 * classification (with the global soft_bounce switch applied) turns into delivered, bounced,
 * rescheduled by its bounce profile, or expired (soft turned hard, 5.4.7); the DSNs the sender
 * asked for (RFC 3461 NOTIFY; default FAILURE,DELAY) are rendered and queued in the same store
 * transaction as the outcome, from the null sender, so a DSN exists exactly when its bounce does.
 *
 * No DSN ever goes to the null sender (RFC 5321 §4.5.5). A DSN of ours that fails is reported
 * once to the postmaster; a report to the postmaster that fails is only logged: never a loop.
 *
 * A recipient that a local alias or forwarding entry expanded (fact `local-expanded`) is done
 * ("expanded" / "relayed", RFC 3464 §2.3.3), and the copy of the message for its targets is
 * queued in the same transaction: same sender and origin, each target with the recipient's
 * NOTIFY and ORCPT (RFC 3461 §6.2.7: an expansion to several addresses drops NOTIFY=SUCCESS and
 * reports "expanded" itself; a single target carries NOTIFY on, and its own delivery reports).
 */
import type { Logger } from 'pino';
import { COMMAND_WORDS, softened, type Classification } from '../bounce/classify-reply.js';
import type { BounceProfiles } from '../bounce/bounce-profile.js';
import { delayWarningDue } from '../bounce/delay-warning.js';
import {
  HeaderCollector, ORIGINAL_BODY, renderDsn, returnsFullMessage,
  type DsnKind, type DsnRecipient,
} from '../bounce/dsn-report.js';
import { nextRetry, willRetryUntil } from '../bounce/retry-schedule.js';
import type { QueueStore } from '../store/queue-store.js';
import type {
  AttemptRecord, DeliveryRecordResult, Envelope, GeneratedMessage, Lease, MessageOrigin, NotifyParam,
  QueuedMessage, QueuedRecipient, RecipientUpdate,
} from '../store/queue-types.js';
import type { DeliveryFact } from '../bounce/delivery-fact.js';
import type { DeliveryClock } from './delivery-clock.js';
import type { RecipientResult } from './delivery-result.js';

export interface OutcomeRecorderOptions {
  readonly store: QueueStore;
  readonly profiles: BounceProfiles;
  /** Postfix's soft_bounce: hard verdicts are kept and retried. */
  readonly softBounce: boolean;
  readonly postmaster: string;
  /** Reporting-MTA and the DSN's From: domain. */
  readonly hostname: string;
  readonly clock: DeliveryClock;
  readonly random: () => number;
  /** Originals above this size come back as headers only. */
  readonly maxReturnedSize: number;
  /** Header bytes read from an original for a headers-only DSN. */
  readonly maxHeaderBytes?: number;
  readonly log: Logger;
}

type NotifyKind = 'SUCCESS' | 'FAILURE' | 'DELAY';

/** RFC 3461 §4.1: NEVER, the listed kinds, or (no NOTIFY) failures and delays. */
export function wantsNotice(notify: NotifyParam | null, kind: NotifyKind): boolean {
  if (notify === 'NEVER') return false;
  if (notify === null) return kind !== 'SUCCESS';
  return notify.includes(kind);
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1);
}

function formatAge(ms: number): string {
  const h = ms / 3_600_000;
  if (h >= 1) return `${Math.round(h * 10) / 10} h`;
  return `${Math.round(ms / 60_000)} min`;
}

/** The one-line reason a person reads in the DSN. */
function reasonOf(r: RecipientResult, c: Classification): string {
  const f = r.fact;
  if (f.kind === 'reply') return `host ${f.host ?? r.remoteMta ?? 'unknown'} said: ${c.diagnostic.text} (in reply to ${COMMAND_WORDS[f.command]} command)`;
  if (f.kind === 'session' && f.failure.kind === 'reply') {
    return `host ${f.host ?? r.remoteMta ?? 'unknown'} said: ${c.diagnostic.text} (in reply to ${COMMAND_WORDS[f.failure.command]} command)`;
  }
  return c.diagnostic.text;
}

/** RFC 3461 §6.2.7.3: NOTIFY for the addresses of an expansion, without SUCCESS ("NEVER" when nothing is left). */
export function withoutSuccess(notify: NotifyParam | null): NotifyParam | null {
  if (notify === null || notify === 'NEVER') return notify;
  const rest = notify.filter((k) => k !== 'SUCCESS');
  return rest.length === 0 ? 'NEVER' : rest;
}

type Expansion = Extract<DeliveryFact, { kind: 'local-expanded' }>;

export class OutcomeRecorder {
  constructor(private readonly opts: OutcomeRecorderOptions) {}

  async record(msg: QueuedMessage, lease: Lease, results: readonly RecipientResult[], attempts: readonly AttemptRecord[]): Promise<DeliveryRecordResult> {
    const { clock, profiles, log } = this.opts;
    const now = clock.now();
    const e = msg.envelope;
    const updates: RecipientUpdate[] = [];
    const extraAttempts: AttemptRecord[] = [];
    const notices: Record<DsnKind, DsnRecipient[]> = { failure: [], delay: [], success: [], 'postmaster-copy': [] };
    const copies: GeneratedMessage[] = [];
    const fromUs = msg.origin !== 'received';

    for (const r of results) {
      const rec = msg.recipients[r.index];
      const profile = profiles.forDomain(domainOf(r.address));
      const c = this.opts.softBounce ? softened(r.classification) : r.classification;
      const base: Omit<DsnRecipient, 'action' | 'status' | 'reason'> = {
        finalRecipient: r.address,
        originalRecipient: rec.orcpt,
        diagnostic: c.diagnostic,
        remoteMta: r.fact.kind === 'reply' || r.fact.kind === 'session' ? r.remoteMta : null,
        lastAttemptAt: r.at,
        willRetryUntil: null,
      };
      const line = c.diagnostic.text;
      const logged = { queue_id: msg.id, rcpt: r.address, relay: r.nextHop, status: c.status, reply: line };
      switch (c.outcome) {
        case 'delivered': {
          updates.push({ index: r.index, state: 'delivered', lastReply: line, status: c.status });
          const expansion = r.fact.kind === 'local-expanded' ? r.fact : null;
          log.info({ ...logged, outcome: expansion ? (expansion.mode === 'alias' ? 'expanded' : 'forwarded') : 'delivered' }, 'delivery: delivered');
          if (expansion !== null) copies.push(this.forwardedCopy(msg, rec, r.address, expansion, now));
          // A single target carries NOTIFY on: its own delivery reports.
          const passedOn = r.dsnPassedOn || (expansion !== null && expansion.targets.length === 1);
          if (!fromUs && wantsNotice(rec.notify, 'SUCCESS') && !passedOn) {
            notices.success.push({
              ...base,
              action: expansion ? 'expanded' : r.local ? 'delivered' : 'relayed',
              status: c.status,
              diagnostic: r.local ? null : c.diagnostic,
              reason: expansion ? expansion.detail : r.local ? 'delivered to mailbox' : `relayed to a mailer without DSN support: ${reasonOf(r, c)}`,
            });
          }
          break;
        }
        case 'hard': {
          updates.push({ index: r.index, state: 'bounced', lastReply: line, status: c.status });
          log.info({ ...logged, outcome: 'bounced' }, 'delivery: hard bounce');
          if ((fromUs || wantsNotice(rec.notify, 'FAILURE')) && profile.sendHardBounceDsn) {
            notices.failure.push({ ...base, action: 'failed', status: c.status, reason: reasonOf(r, c) });
          }
          break;
        }
        case 'soft':
        case 'retry-now': {
          const decision = nextRetry(profile, { attempts: rec.attempts + 1, receivedAt: e.receivedAt, now }, this.opts.random);
          if (decision.kind === 'retry') {
            updates.push({ index: r.index, state: 'queued', lastReply: line, status: c.status, nextAttemptAt: decision.at });
            log.info({ ...logged, outcome: 'deferred', next_attempt_in_ms: decision.interval }, 'delivery: soft bounce, retry later');
            if (!fromUs && wantsNotice(rec.notify, 'DELAY') && delayWarningDue(profile, { receivedAt: e.receivedAt, now, warningsSent: msg.delayWarnings })) {
              notices.delay.push({
                ...base, action: 'delayed', status: c.status, reason: reasonOf(r, c),
                willRetryUntil: willRetryUntil(profile, e.receivedAt),
              });
            }
            break;
          }
          // Soft turned hard: RFC 3463 5.4.7 "delivery time expired", with the last reply.
          const why = decision.reason === 'max-retries'
            ? `${rec.attempts + 1} attempts`
            : `${formatAge(now - e.receivedAt)} in queue`;
          updates.push({ index: r.index, state: 'expired', lastReply: line, status: '5.4.7' });
          extraAttempts.push({ at: now, recipients: [r.index], nextHop: null, reply: `delivery time expired after ${why}; last: ${line}`, outcome: 'expired', status: '5.4.7' });
          log.info({ ...logged, outcome: 'expired', status: '5.4.7' }, 'delivery: soft bounce turned hard');
          if ((fromUs || wantsNotice(rec.notify, 'FAILURE')) && profile.sendHardBounceDsn) {
            notices.failure.push({
              ...base, action: 'failed', status: '5.4.7',
              reason: `delivery time expired (gave up after ${why}); last: ${reasonOf(r, c)}`,
            });
          }
          break;
        }
      }
    }

    const generated: GeneratedMessage[] = [...copies];
    if (e.sender === '') {
      // RFC 5321 §4.5.5: never a DSN for the null sender. A DSN of ours that failed goes to the postmaster, once.
      if (msg.origin === 'dsn' && notices.failure.length > 0) {
        generated.push(await this.dsn(msg, 'postmaster-copy', notices.failure, this.opts.postmaster, 'postmaster-notice', 'FULL'));
      } else if (notices.failure.length > 0) {
        log.warn({ queue_id: msg.id, origin: msg.origin }, 'delivery: undeliverable message from the null sender; no DSN');
      }
    } else {
      for (const kind of ['failure', 'delay', 'success'] as const) {
        if (notices[kind].length > 0) generated.push(await this.dsn(msg, kind, notices[kind], e.sender, 'dsn', e.ret));
      }
    }

    const result = await this.opts.store.recordDelivery({
      lease,
      message: msg,
      recipients: updates,
      attempts: [...attempts, ...extraAttempts],
      generated,
      ...(notices.delay.length > 0 ? { delayWarnings: msg.delayWarnings + 1 } : {}),
    });
    if (!result.applied) {
      log.warn({ queue_id: msg.id, worker: lease.owner }, 'delivery: the lease passed to another worker; this run is not recorded');
    } else {
      result.generated.forEach((id, i) => {
        if (i < copies.length) log.info({ queue_id: id, about: msg.id, rcpt: copies[i].envelope.recipients.map((t) => t.address) }, 'delivery: forwarded copy queued');
        else log.info({ queue_id: id, about: msg.id }, 'delivery: DSN queued');
      });
      if (result.finished) log.info({ queue_id: msg.id }, 'delivery: message done');
    }
    return result;
  }

  /**
   * The copy of `msg` an alias or forward sends to its targets: same sender and origin, the
   * recipient's NOTIFY (without SUCCESS for several targets) and ORCPT (the recipient itself
   * when the client gave none), and a `Delivered-To:` line for the address it was expanded for
   * (loop detection, see mailbox-transport.ts).
   */
  private forwardedCopy(msg: QueuedMessage, rec: QueuedRecipient, address: string, expansion: Expansion, now: number): GeneratedMessage {
    const e = msg.envelope;
    const notify = expansion.targets.length > 1 ? withoutSuccess(rec.notify) : rec.notify;
    const orcpt = rec.orcpt ?? { addrType: 'rfc822', address: rec.address };
    const envelope: Envelope = {
      ...e,
      recipients: expansion.targets.map((t) => ({ address: t, notify, orcpt })),
      client: { ip: '127.0.0.1', port: 0, helo: this.opts.hostname, listener: 'postern-forward', senderGroup: null, policy: null, rdns: null },
      sessionId: `fwd-${msg.id}`,
      receivedAt: now,
    };
    return { envelope, origin: msg.origin, body: [Buffer.from(`Delivered-To: ${address}\r\n`, 'utf8'), { copyOf: msg.id }] };
  }

  /** Renders one DSN about `msg` as a message for the queue. */
  private async dsn(
    msg: QueuedMessage,
    kind: DsnKind,
    recipients: DsnRecipient[],
    to: string,
    origin: Exclude<MessageOrigin, 'received'>,
    ret: 'FULL' | 'HDRS' | null,
  ): Promise<GeneratedMessage> {
    const e = msg.envelope;
    const now = this.opts.clock.now();
    const full = returnsFullMessage(ret, msg.size, this.opts.maxReturnedSize);
    const headers = full ? Buffer.alloc(0) : await this.headersOf(msg.id);
    const rendered = renderDsn({
      kind,
      reportingMta: this.opts.hostname,
      to,
      original: {
        queueId: msg.id, sender: e.sender, envid: e.envid, ret, receivedAt: e.receivedAt, size: msg.size,
        smtputf8: e.smtputf8, eightBit: e.body === '8BITMIME', headers,
      },
      recipients,
      now,
      maxReturnedSize: this.opts.maxReturnedSize,
    });
    const envelope: Envelope = {
      sender: '',
      // RFC 3461 §6.2: nobody is to report on a report.
      recipients: [{ address: to, notify: 'NEVER', orcpt: null }],
      ret: null,
      envid: null,
      body: rendered.eightBit ? '8BITMIME' : null,
      smtputf8: rendered.smtputf8,
      client: { ip: '127.0.0.1', port: 0, helo: this.opts.hostname, listener: 'postern-dsn', senderGroup: null, policy: null, rdns: null },
      sessionId: `dsn-${msg.id}`,
      receivedAt: now,
    };
    return {
      envelope,
      origin,
      body: rendered.parts.map((p) => (p === ORIGINAL_BODY ? { copyOf: msg.id } : p)),
    };
  }

  private async headersOf(id: string): Promise<Buffer> {
    const collector = new HeaderCollector(this.opts.maxHeaderBytes ?? 1024 * 1024);
    try {
      for await (const chunk of this.opts.store.bodyChunks(id)) {
        if (collector.push(chunk)) break;
      }
    } catch (err) {
      this.opts.log.warn({ queue_id: id, err: String(err) }, 'delivery: cannot read the header for a DSN');
    }
    return collector.headers();
  }
}
