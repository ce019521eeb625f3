/**
 * One delivery run of one leased message: the recipients that are due are routed, grouped by
 * route (one transaction per group), and delivered — local ones into their mailboxes, the others
 * over SMTP or LMTP to the route's hosts. MX hosts are tried in preference order while the
 * failures are the host's (connection, greeting, TLS, 421: Postfix's session scope); a 452/453
 * to RCPT sends the rest in a new transaction on the same connection at once. Then the outcome
 * recorder classifies, reschedules, bounces and writes it all in one store transaction.
 *
 * When delivery is stopped mid-run (shutdown past its grace), recipients cut short are left
 * as they were: still queued and due, delivered again later (at least once, never lost).
 */
import type { Logger } from 'pino';
import { classifyFact, type Classification } from '../bounce/classify-reply.js';
import type { DeliveryFact } from '../bounce/delivery-fact.js';
import { NO_RCPT_PARAMS } from '../smtp/esmtp-params.js';
import { parseMailbox, type Mailbox } from '../smtp/mailbox.js';
import type { ClientTlsMode } from '../smtp/client/client-session.js';
import type { TransactionRequest } from '../smtp/client/client-events.js';
import type { DecisiveFact } from '../smtp/client/rcpt-outcomes.js';
import type { QueueStore } from '../store/queue-store.js';
import type { AttemptRecord, Lease, QueuedMessage } from '../store/queue-types.js';
import type { ConnectionPool } from './connection-pool.js';
import type { DkimSigner } from './dkim-signer.js';
import type { DeliveryClock } from './delivery-clock.js';
import type { RecipientResult } from './delivery-result.js';
import type { LocalTransport } from './maildir-deliverer.js';
import { hostAddresses, lookupMx, type MxLookups } from './mx-lookup.js';
import type { OutcomeRecorder } from './outcome-recorder.js';
import type { Route, Router } from './router.js';
import { targetLabel, type SmtpClientConnection, type SmtpTarget } from './smtp-connector.js';

export interface MessageDeliveryOptions {
  readonly store: QueueStore;
  readonly router: Router;
  readonly dns: MxLookups;
  readonly pool: ConnectionPool;
  readonly local: LocalTransport;
  readonly recorder: OutcomeRecorder;
  readonly clock: DeliveryClock;
  readonly random: () => number;
  /** Port of MX hosts and address literals. */
  readonly smtpPort: number;
  /** STARTTLS towards MX hosts and address literals. */
  readonly mxTls: ClientTlsMode;
  /** Our own listeners: a next hop among them is a loop. */
  readonly selfAddresses: readonly { readonly host: string; readonly port: number }[];
  readonly log: Logger;
  /** DKIM signing of what goes out over SMTP/LMTP (`dkim.sign`); absent or null: unsigned. */
  readonly signer?: DkimSigner | null;
}

const NO_SIGNATURE = Buffer.alloc(0);

/** `head`, then the stored body: the signature goes out first, the body still streams from the store. */
async function* prefixed(head: Uint8Array, body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (head.length > 0) yield head;
  yield* body;
}

interface Item {
  readonly index: number;
  readonly address: string;
}

interface HostPlan {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly lookupFailed: boolean;
}

interface Plan {
  readonly destination: string;
  readonly hosts: readonly HostPlan[];
  readonly port: number;
  readonly protocol: 'smtp' | 'lmtp';
  readonly tls: ClientTlsMode;
}

/** The latest word on one recipient in this run. */
interface Latest {
  fact: DeliveryFact;
  classification: Classification;
  remoteMta: string | null;
  nextHop: string | null;
  at: number;
  dsnPassedOn: boolean;
  /** A soft session-level failure seen on some host (preferred over a later host's hard "no"). */
  soft: Omit<Latest, 'soft'> | null;
}

/** Results and attempts of one run, collected as the groups finish. */
class RunRecord {
  readonly latest = new Map<number, Latest>();
  readonly attempts: AttemptRecord[] = [];

  constructor(private readonly items: ReadonlyMap<number, Item>) {}

  note(index: number, fact: DeliveryFact, c: Classification, where: { remoteMta: string | null; nextHop: string | null; at: number; dsnPassedOn?: boolean }): void {
    const prev = this.latest.get(index);
    const entry = { fact, classification: c, remoteMta: where.remoteMta, nextHop: where.nextHop, at: where.at, dsnPassedOn: where.dsnPassedOn ?? false };
    let soft = prev?.soft ?? null;
    if (c.outcome === 'soft' && c.scope === 'session') soft = entry;
    this.latest.set(index, { ...entry, soft });
  }

  /** One attempt record per distinct answer within one try. */
  attempt(indexes: readonly number[], nextHop: string | null, at: number): void {
    const groups = new Map<string, { c: Classification; indexes: number[] }>();
    for (const i of indexes) {
      const l = this.latest.get(i);
      if (!l) continue;
      const key = `${l.classification.outcome}\u0000${l.classification.diagnostic.text}`;
      const g = groups.get(key) ?? { c: l.classification, indexes: [] };
      g.indexes.push(i);
      groups.set(key, g);
    }
    for (const { c, indexes: rcpts } of groups.values()) {
      this.attempts.push({ at, recipients: rcpts, nextHop, reply: c.diagnostic.text, outcome: c.outcome, status: c.status });
    }
  }

  results(local: ReadonlySet<number>): RecipientResult[] {
    const out: RecipientResult[] = [];
    for (const [index, l] of this.latest) {
      // A host's hard "no" to the session (554 greeting) does not outweigh another host's "try later".
      const final = l.classification.outcome === 'hard' && l.classification.scope === 'session' && l.soft ? l.soft : l;
      out.push({
        index,
        address: this.items.get(index)?.address ?? '',
        fact: final.fact,
        classification: final.classification,
        remoteMta: final.remoteMta,
        nextHop: final.nextHop,
        at: final.at,
        dsnPassedOn: final.dsnPassedOn,
        local: local.has(index),
      });
    }
    return out.sort((a, b) => a.index - b.index);
  }
}

function isSameHost(a: string, b: string): boolean {
  const norm = (h: string): string => (h === 'localhost' ? '127.0.0.1' : h.replace(/^::ffff:/, ''));
  return norm(a) === norm(b) || b === '0.0.0.0' || b === '::';
}

export class MessageDelivery {
  /** DKIM-Signature headers of the messages of runs in progress (a run's message object is its own). */
  private readonly signatures = new WeakMap<QueuedMessage, Promise<Buffer>>();

  constructor(private readonly opts: MessageDeliveryOptions) {}

  /**
   * The DKIM-Signature header(s) for a message going out: computed once per run (one extra read
   * of the stored body, hashed as it streams); empty when no key applies. A signing failure is
   * logged and the message goes unsigned — DKIM never holds mail back.
   */
  private signature(msg: QueuedMessage): Promise<Buffer> {
    const signer = this.opts.signer;
    if (!signer || signer.size === 0) return Promise.resolve(NO_SIGNATURE);
    let p = this.signatures.get(msg);
    if (p === undefined) {
      p = signer.sign(() => this.opts.store.bodyChunks(msg.id), msg.envelope.sender).then(
        (header) => (header === '' ? NO_SIGNATURE : Buffer.from(header, 'utf8')),
        (err: unknown) => {
          this.opts.log.warn({ queue_id: msg.id, err: err instanceof Error ? err.message : String(err) }, 'delivery: DKIM signing failed; sending unsigned');
          return NO_SIGNATURE;
        },
      );
      this.signatures.set(msg, p);
    }
    return p;
  }

  /**
   * Delivers what is due of the leased message and records the outcome; calls `slotFree` when
   * only the recording is left (see DeliveryScheduler).
   */
  async deliver(lease: Lease, signal: AbortSignal, slotFree: () => void = () => undefined): Promise<void> {
    const { store, clock, log } = this.opts;
    const msg = store.getMessage(lease.id);
    const now = clock.now();
    if (msg === null || msg.state !== 'queued') {
      store.releaseLease(lease);
      return;
    }
    const due: Item[] = [];
    msg.recipients.forEach((r, index) => {
      if (r.state === 'queued' && r.nextAttemptAt <= now) due.push({ index, address: r.address });
    });
    if (due.length === 0) {
      store.releaseLease(lease);
      return;
    }
    const groups = new Map<string, { route: Route; items: Item[] }>();
    for (const item of due) {
      const routed = this.opts.router.route(item.address);
      const g = groups.get(routed.key) ?? { route: routed.route, items: [] };
      g.items.push({ index: item.index, address: routed.address });
      groups.set(routed.key, g);
    }
    const record = new RunRecord(new Map([...groups.values()].flatMap((g) => g.items.map((i) => [i.index, i] as const))));
    const local = new Set<number>();
    await Promise.all([...groups.values()].map(async (g) => {
      try {
        if (g.route.kind === 'local') {
          g.items.forEach((i) => local.add(i.index));
          await this.deliverLocal(msg, g.items, record, signal);
        } else if (g.route.kind === 'invalid') {
          for (const i of g.items) {
            const fact: DeliveryFact = { kind: 'local-failure', failure: 'bad-address', detail: `${i.address}: ${g.route.reason}` };
            record.note(i.index, fact, classifyFact(fact), { remoteMta: null, nextHop: null, at: clock.now() });
          }
        } else {
          await this.deliverRemote(msg, g.route, g.items, record, signal);
        }
      } catch (err) {
        log.error({ queue_id: msg.id, err }, 'delivery: unexpected failure; the recipients stay queued');
      }
    }));
    if (signal.aborted) {
      // Only what finished counts; the rest stays due (at least once, never lost).
      log.info({ queue_id: msg.id }, 'delivery: stopped mid-run; unfinished recipients stay queued');
    } else {
      // Every due recipient gets an outcome: one left out would be due again at once, in a loop.
      for (const item of due) {
        if (record.latest.has(item.index)) continue;
        const fact: DeliveryFact = { kind: 'local-failure', failure: 'io', detail: 'no delivery attempt could be made' };
        record.note(item.index, fact, classifyFact(fact), { remoteMta: null, nextHop: null, at: clock.now() });
      }
    }
    const results = record.results(local).filter((r) => !(signal.aborted && r.classification.scope === 'session' && r.classification.outcome !== 'delivered'));
    if (results.length === 0) {
      store.releaseLease(lease);
      return;
    }
    slotFree();
    await this.opts.recorder.record(msg, lease, results, record.attempts);
  }

  private async deliverLocal(msg: QueuedMessage, items: readonly Item[], record: RunRecord, signal: AbortSignal): Promise<void> {
    for (const item of items) {
      if (signal.aborted) return;
      const fact = await this.opts.local.deliver({
        queueId: msg.id,
        sender: msg.envelope.sender,
        recipient: item.address,
        body: () => this.opts.store.bodyChunks(msg.id),
      });
      const at = this.opts.clock.now();
      record.note(item.index, fact, classifyFact(fact), { remoteMta: null, nextHop: 'maildir', at });
      record.attempt([item.index], 'maildir', at);
    }
  }

  /** The hosts, port, protocol and TLS mode for a remote route; or a DNS fact that settles everybody. */
  private async plan(route: Exclude<Route, { kind: 'local' | 'invalid' }>): Promise<Plan | DeliveryFact> {
    const { smtpPort, mxTls, dns, random } = this.opts;
    switch (route.kind) {
      case 'literal':
        return { destination: `literal:${route.ip}`, hosts: [{ name: `[${route.ip}]`, addresses: [route.ip], lookupFailed: false }], port: smtpPort, tls: mxTls, protocol: 'smtp' };
      case 'relay': {
        const hop = route.nextHop;
        const port = hop.port ?? (hop.protocol === 'lmtp' ? 24 : smtpPort);
        const base = { destination: `relay:${hop.url}`, port, tls: hop.tls, protocol: hop.protocol } as const;
        if (hop.host.includes(':') || /^\d{1,3}(\.\d{1,3}){3}$/.test(hop.host)) {
          return { ...base, hosts: [{ name: hop.host, addresses: [hop.host], lookupFailed: false }] };
        }
        const found = await hostAddresses(dns, hop.host);
        if (found.addresses.length === 0) {
          // A configured next hop that does not resolve is a configuration problem: keep the mail.
          return { kind: 'dns', failure: 'temporary', domain: hop.host, detail: `next hop ${hop.url} has no address${found.error ? ` (${found.error})` : ''}` };
        }
        return { ...base, hosts: [{ name: hop.host, addresses: found.addresses, lookupFailed: false }] };
      }
      case 'mx': {
        const mx = await lookupMx(route.domain, dns, random);
        if (!mx.ok) return mx.fact;
        return { destination: `mx:${route.domain}`, hosts: mx.hosts, port: smtpPort, tls: mxTls, protocol: 'smtp' };
      }
    }
  }

  private async deliverRemote(
    msg: QueuedMessage,
    route: Exclude<Route, { kind: 'local' | 'invalid' }>,
    items: readonly Item[],
    record: RunRecord,
    signal: AbortSignal,
  ): Promise<void> {
    const { clock } = this.opts;
    const plan = await this.plan(route);
    if (!('hosts' in plan)) {
      const c = classifyFact(plan);
      const at = clock.now();
      for (const i of items) record.note(i.index, plan, c, { remoteMta: null, nextHop: 'dns', at });
      record.attempt(items.map((i) => i.index), 'dns', at);
      return;
    }
    let pending: Item[] = [...items];
    for (const host of plan.hosts) {
      if (pending.length === 0 || signal.aborted) break;
      if (host.addresses.length === 0) {
        const fact: DeliveryFact = { kind: 'dns', failure: 'temporary', domain: host.name, detail: 'type=A: no address found now' };
        const at = clock.now();
        for (const i of pending) record.note(i.index, fact, { ...classifyFact(fact), scope: 'session' }, { remoteMta: host.name, nextHop: 'dns', at });
        continue;
      }
      for (const ip of host.addresses) {
        if (pending.length === 0 || signal.aborted) break;
        const target: SmtpTarget = { host: host.name, ip, port: plan.port, protocol: plan.protocol, tls: plan.tls };
        if (this.opts.selfAddresses.some((s) => s.port === plan.port && isSameHost(ip, s.host))) {
          const fact: DeliveryFact = { kind: 'loop', host: targetLabel(target) };
          const at = clock.now();
          for (const i of pending) record.note(i.index, fact, classifyFact(fact), { remoteMta: host.name, nextHop: null, at });
          record.attempt(pending.map((i) => i.index), null, at);
          return;
        }
        pending = await this.tryHost(msg, plan, target, pending, record, signal);
      }
    }
  }

  /** Delivers `pending` through one host; returns those that should try the next host. */
  private async tryHost(msg: QueuedMessage, plan: Plan, target: SmtpTarget, pending: Item[], record: RunRecord, signal: AbortSignal): Promise<Item[]> {
    const { pool, clock } = this.opts;
    const nextHop = `${plan.protocol}:${targetLabel(target)}`;
    const acquired = await pool.acquire(plan.destination, target, signal);
    if (!acquired.ok) {
      const c = { ...classifyFact(acquired.fact), scope: 'session' as const };
      const at = clock.now();
      for (const i of pending) record.note(i.index, acquired.fact, c, { remoteMta: target.host, nextHop, at });
      record.attempt(pending.map((i) => i.index), nextHop, at);
      return pending;
    }
    const conn = acquired.pooled.connection;
    const abort = (): void => conn.destroy();
    signal.addEventListener('abort', abort, { once: true });
    try {
      return await this.transactions(msg, conn, nextHop, target.host, pending, record);
    } finally {
      signal.removeEventListener('abort', abort);
      pool.release(acquired.pooled);
    }
  }

  /** Transactions on one connection until every recipient is settled, moves on, or stops progressing. */
  private async transactions(msg: QueuedMessage, conn: SmtpClientConnection, nextHop: string, host: string, pending: Item[], record: RunRecord): Promise<Item[]> {
    const moveOn: Item[] = [];
    let batch = pending;
    const signature = await this.signature(msg);
    for (let round = 0; batch.length > 0 && round < 100; round++) {
      if (!conn.usable) {
        moveOn.push(...batch);
        break;
      }
      const request = this.request(msg, batch, signature.length);
      if (request === null) {
        const fact: DeliveryFact = { kind: 'local-failure', failure: 'bad-address', detail: 'an address of the envelope does not parse' };
        for (const i of batch) record.note(i.index, fact, classifyFact(fact), { remoteMta: null, nextHop: null, at: this.opts.clock.now() });
        return moveOn;
      }
      const outcome = await conn.send(request, () => prefixed(signature, this.opts.store.bodyChunks(msg.id)));
      const at = this.opts.clock.now();
      const retryNow: Item[] = [];
      outcome.recipients.forEach((o, k) => {
        const item = batch[k];
        const fact = toFact(o.result, conn.label);
        const c = classifyFact(fact);
        record.note(item.index, fact, c, { remoteMta: host, nextHop, at, dsnPassedOn: outcome.dsnPassedOn });
        if (c.outcome === 'retry-now') retryNow.push(item);
        else if (c.outcome !== 'delivered' && c.scope === 'session') moveOn.push(item);
      });
      record.attempt(batch.map((i) => i.index), nextHop, at);
      // RFC 5321 §4.5.3.1.10: the rest in a new transaction, now — as long as it makes progress.
      if (retryNow.length === 0 || retryNow.length === batch.length) break;
      batch = retryNow;
    }
    return moveOn;
  }

  /** `extra`: bytes sent before the stored body (the DKIM signature), counted in SIZE. */
  private request(msg: QueuedMessage, items: readonly Item[], extra = 0): TransactionRequest | null {
    const e = msg.envelope;
    const reversePath = e.sender === '' ? null : parseMailbox(e.sender);
    if (e.sender !== '' && reversePath === null) return null;
    const recipients: { mailbox: Mailbox; params: typeof NO_RCPT_PARAMS }[] = [];
    for (const i of items) {
      const mailbox = parseMailbox(i.address);
      if (mailbox === null) return null;
      const r = msg.recipients[i.index];
      recipients.push({ mailbox, params: { notify: r.notify, orcpt: r.orcpt } });
    }
    return {
      reversePath,
      params: { size: msg.size + extra, body: e.body, smtputf8: e.smtputf8, ret: e.ret, envid: e.envid, auth: null },
      recipients,
    };
  }
}

function toFact(result: DecisiveFact, host: string): DeliveryFact {
  switch (result.kind) {
    case 'reply': return { kind: 'reply', command: result.command, reply: result.reply, host };
    case 'failure': return { kind: 'session', failure: result.failure, host };
    case 'refusal': return { kind: 'refusal', refusal: result.refusal, host };
  }
}
