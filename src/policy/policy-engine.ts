/**
 * The config-driven policy engine: per connection it finds the client's sender group (first
 * match wins), takes that group's mail-flow policy, and answers every stage from it:
 *
 *   connect  tcprefuse → close; reject → 554 5.7.1 (then only QUIT); connections per IP → 421 4.7.0;
 *            reverse DNS with reject_at: connect → 554 5.7.25 / 421 4.7.25; else 220 (policy banner)
 *   MAIL     sender block list → 550 5.7.1; sender domain → 553 5.1.8 / 451 4.1.8;
 *            messages per hour per client IP → 450 4.7.1
 *   RCPT     reverse DNS (delayed to here by default, as Postfix's smtpd_delay_reject) →
 *            550 5.7.25 / 450 4.7.25; recipient access (recipient-access-table.ts);
 *            recipients per hour per client IP and per sender → 453 4.5.3
 *   session  message size (552 5.3.4), recipients per message (452 4.5.3) and messages per
 *            connection (421 4.7.0) go to the session as limits; it answers them itself, with
 *            this policy's overrides (`SessionPolicy.reply`).
 *
 * Counting: a MAIL that is accepted counts as a message, an RCPT that is accepted as a
 * recipient (as Postfix's anvil counts); a refused one is given back.
 */
import type { PosternConfig } from '../config/config-schema.js';
import type { ReplyId } from '../smtp/reply-catalogue.js';
import type { Reply, ReplyVars } from '../smtp/reply.js';
import type { Verdict } from '../smtp/server/server-events.js';
import type { SessionLimits } from '../smtp/server/session-limits.js';
import { ClientDnsFacts } from './client-dns-facts.js';
import type { Clock, Counters, PolicyDns, RecipientDirectory } from './facts.js';
import { canonicalIp } from './ip-address.js';
import { resolveMailFlowPolicy, type MailFlowPolicy } from './mail-flow-policy.js';
import type { PolicyObserver, PolicyStage, DnsLookupRecord } from './policy-trace.js';
import { AddressList, ListRecipientDirectory, normalizeDomain, RecipientAccessTable, unquoteLocalPart } from './recipient-access-table.js';
import { checkReverseDns, type ReverseDnsVerdict } from './reverse-dns-check.js';
import { verifySenderDomain } from './sender-domain-check.js';
import { compileSenderGroups, matchSenderGroup, type CompiledSenderGroup, type SenderGroupMatch } from './sender-group-matcher.js';
import type {
  AuthFailureVerdict, ClientFacts, MailFacts, MaybeAsync, MessageCheck, PolicyEngine, RcptFacts, SessionPolicy,
} from './session-policy.js';
import { senderAuthFor } from '../config/sender-auth-schema.js';
import { authenticationResultsHeader, decideSenderAuth, SenderAuthCheck } from './sender-authentication.js';
import { InProcessCounters } from './sliding-window-counters.js';

const HOUR_MS = 3_600_000;
const ACCEPT: Verdict = { kind: 'accept' };

interface RdnsOutcome {
  readonly verdict: ReverseDnsVerdict;
  readonly dns: readonly DnsLookupRecord[];
}

/** `f(v)` now when `v` is a value, after it when it is a promise: no I/O, no await, no extra turn. */
function chain<T, U>(v: MaybeAsync<T>, f: (t: T) => MaybeAsync<U>): MaybeAsync<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** The parts of the config the engine reads. */
export type PolicyEngineConfig = Pick<
  PosternConfig,
  'hostname' | 'limits' | 'domains' | 'sender_groups' | 'policies' | 'recipients' | 'senders' | 'reply_overrides'
> & Partial<Pick<PosternConfig, 'auth' | 'sender_auth'>>;

export interface ConfiguredPolicyEngineOptions {
  readonly config: PolicyEngineConfig;
  readonly dns: PolicyDns;
  /** Default: in-process sliding windows. */
  readonly counters?: Counters;
  readonly clock?: Clock;
  /** Who exists in the local domains. Default: `recipients.valid`. */
  readonly directory?: RecipientDirectory;
  /** For DMARC pct sampling (RFC 7489 §6.6.4). Default Math.random. */
  readonly random?: () => number;
}

/** The policy a client gets when no sender group matches: refused (a config warning says so). */
const NO_GROUP_POLICY = 'BLOCKED';

export class ConfiguredPolicyEngine implements PolicyEngine {
  readonly groups: readonly CompiledSenderGroup[];
  readonly policies: ReadonlyMap<string, MailFlowPolicy>;
  readonly access: RecipientAccessTable;
  readonly senderBlockList: AddressList;
  readonly counters: Counters;
  readonly clock: Clock;
  readonly hostname: string;

  constructor(readonly opts: ConfiguredPolicyEngineOptions) {
    const { config } = opts;
    this.hostname = config.hostname;
    this.groups = compileSenderGroups(config.sender_groups);
    const base = {
      maxMessageSize: config.limits.max_message_size,
      maxRecipients: config.limits.max_recipients,
      maxMessagesPerConnection: config.limits.max_messages_per_connection,
    };
    this.policies = new Map(Object.entries(config.policies).map(([name, p]) => [
      name, resolveMailFlowPolicy(name, p, base, config.hostname, config.reply_overrides),
    ]));
    this.access = new RecipientAccessTable({
      localDomains: config.domains.local,
      relayDomains: Object.keys(config.domains.relay),
      blocked: config.recipients.blocked,
      directory: opts.directory ?? new ListRecipientDirectory(config.recipients.valid),
    });
    this.senderBlockList = new AddressList(config.senders.blocked);
    this.counters = opts.counters ?? new InProcessCounters();
    this.clock = opts.clock ?? Date.now;
  }

  async openSession(client: ClientFacts, observer?: PolicyObserver): Promise<ConfiguredSessionPolicy> {
    const facts = new ClientDnsFacts(client.ip, this.opts.dns);
    const match = await matchSenderGroup(this.groups, client.ip, facts);
    for (const t of match.trials) {
      observer?.step({ stage: 'session', check: `sender group ${t.group}: ${t.matcher}`, outcome: t.outcome, dns: t.dns });
    }
    const name = match.group?.policy ?? NO_GROUP_POLICY;
    const policy = this.policies.get(name);
    if (policy === undefined) throw new Error(`policy "${name}" is not defined`); // the config check prevents this
    return new ConfiguredSessionPolicy(this, client, match, policy, facts, observer);
  }
}

export class ConfiguredSessionPolicy implements SessionPolicy {
  readonly senderGroup: string | null;
  readonly policyName: string;
  readonly limits: Partial<SessionLimits>;
  readonly trusted: boolean;
  private readonly ip: string;
  private rdnsLookup: Promise<RdnsOutcome> | null = null;
  private rdnsOutcome: RdnsOutcome | null = null;

  constructor(
    private readonly engine: ConfiguredPolicyEngine,
    readonly client: ClientFacts,
    readonly match: SenderGroupMatch,
    readonly policy: MailFlowPolicy,
    private readonly facts: ClientDnsFacts,
    private readonly observer?: PolicyObserver,
  ) {
    this.senderGroup = match.group?.name ?? null;
    this.policyName = policy.name;
    this.limits = policy.limits;
    this.trusted = policy.config.trusted;
    this.ip = canonicalIp(client.ip);
  }

  /** The forward-confirmed rDNS name, once a check or matcher has looked it up. */
  get rdns(): string | null {
    return this.facts.confirmedName;
  }

  /** Replies the session gives itself (size, recipients per message, …), with this policy's overrides. */
  reply(id: ReplyId, vars: ReplyVars = {}, extraLines: readonly string[] = []): Reply {
    return this.policy.replies.render(id, vars, extraLines);
  }

  private step(stage: PolicyStage, check: string, outcome: string, dns: readonly DnsLookupRecord[] = []): void {
    this.observer?.step({ stage, check, outcome, dns });
  }

  private reject(id: ReplyId, vars: ReplyVars = {}, disconnect = false): Verdict {
    const reply = this.policy.replies.render(id, vars);
    return disconnect ? { kind: 'reject', reply, disconnect } : { kind: 'reject', reply };
  }

  private get clientVar(): ReplyVars {
    return { client: `[${this.client.ip}]` };
  }

  /** The reverse-DNS verdict of this connection: looked up once, synchronous once known. */
  private reverseDnsVerdict(): MaybeAsync<RdnsOutcome> {
    if (this.rdnsOutcome !== null) return this.rdnsOutcome;
    this.rdnsLookup ??= this.facts.reverseDns().then((f) => {
      this.rdnsOutcome = { verdict: checkReverseDns(this.policy.config.reverse_dns, f), dns: f.dns };
      return this.rdnsOutcome;
    });
    return this.rdnsLookup;
  }

  connect(): MaybeAsync<Verdict> {
    const p = this.policy.config;
    if (p.action === 'tcprefuse') {
      this.step('connect', `policy ${this.policyName}: action tcprefuse`, 'close without a greeting');
      return { kind: 'refuse' };
    }
    if (p.action === 'reject') {
      this.step('connect', `policy ${this.policyName}: action reject`, 'refuse at the greeting');
      return this.reject('connect.rejected');
    }
    if (p.max_connections_per_ip !== null) {
      const over = this.client.connectionsFromIp > p.max_connections_per_ip;
      this.step('connect', `connections from ${this.client.ip} (max ${p.max_connections_per_ip})`, `${this.client.connectionsFromIp}${over ? ': over the limit' : ''}`);
      if (over) return this.reject('connect.limit', {}, true);
    }
    const greet = (): Verdict => (p.banner === null
      ? ACCEPT
      : { kind: 'accept', reply: this.policy.replies.render('greeting', { banner: p.banner }) });
    if (p.reverse_dns === 'none' || p.reject_at !== 'connect') return greet();
    return chain(this.reverseDnsVerdict(), ({ verdict, dns }) => {
      this.step('connect', `reverse DNS (${p.reverse_dns})`, `${verdict.result}: ${verdict.why}`, dns);
      if (verdict.result === 'fail') return { kind: 'reject', reply: this.policy.replies.renderAtGreeting('rcpt.rdns-failed', this.clientVar) };
      if (verdict.result === 'temporary') {
        return { kind: 'reject', reply: this.policy.replies.renderAtGreeting('rcpt.rdns-tempfail', this.clientVar), disconnect: true };
      }
      return greet();
    });
  }

  helo(): Verdict {
    return ACCEPT;
  }

  mail(f: MailFacts): MaybeAsync<Verdict> {
    const p = this.policy.config;
    const sender = f.reversePath;
    if (sender === null) return this.mailRate();
    const domain = normalizeDomain(sender.domain);
    const hit = this.engine.senderBlockList.match(unquoteLocalPart(sender.localPart), domain);
    if (this.engine.senderBlockList.size > 0) this.step('mail', 'sender block list', hit === null ? 'not listed' : `listed (${hit})`);
    if (hit !== null) return this.reject('mail.sender-blocked');
    if (!p.verify_sender_domain) return this.mailRate();
    return verifySenderDomain(this.engine.opts.dns, domain).then((v) => {
      this.step('mail', `sender domain ${domain}`, `${v.result}: ${v.why}`, v.dns);
      if (v.result === 'missing') return this.reject('mail.sender-domain-unknown');
      if (v.result === 'temporary') return this.reject('mail.sender-domain-tempfail');
      return this.mailRate();
    });
  }

  /** Messages per hour per client IP: an accepted MAIL counts. */
  private mailRate(): MaybeAsync<Verdict> {
    const limit = this.policy.config.messages_per_hour;
    if (limit === null) return ACCEPT;
    return this.overLimit(`msg/ip/${this.ip}`, limit).then((refused) => {
      this.step('mail', `messages per hour from ${this.client.ip} (max ${limit})`, refused ? 'limit reached' : 'under the limit');
      return refused ? this.reject('mail.rate-limited') : ACCEPT;
    });
  }

  rcpt(f: RcptFacts): MaybeAsync<Verdict> {
    const p = this.policy.config;
    // An authenticated submission client is known by its credentials, not by its address (a
    // laptop on a home line has no useful reverse DNS): the delayed client check is skipped.
    if (p.reverse_dns === 'none' || p.reject_at !== 'rcpt' || isAuthenticated(f)) return this.rcptAccess(f);
    return chain(this.reverseDnsVerdict(), ({ verdict, dns }) => {
      this.step('rcpt', `reverse DNS (${p.reverse_dns})`, `${verdict.result}: ${verdict.why}`, dns);
      if (verdict.result === 'fail') return this.reject('rcpt.rdns-failed', this.clientVar);
      if (verdict.result === 'temporary') return this.reject('rcpt.rdns-tempfail', this.clientVar);
      return this.rcptAccess(f);
    });
  }

  private rcptAccess(f: RcptFacts): MaybeAsync<Verdict> {
    // RFC 6409 §4.3 / RFC 4954 §5: an authenticated client may relay (AUTH is offered only on
    // listeners with `auth:` set).
    const mayRelay = this.policy.relays || isAuthenticated(f);
    if (!this.policy.relays && mayRelay) this.step('rcpt', 'relay permission', `authenticated as ${f.authenticatedUser}: may relay`);
    return chain(this.engine.access.decide(f.forwardPath, mayRelay, f.params.size), (d) => {
      switch (d.kind) {
        case 'reject':
          this.step('rcpt', 'recipient access', `reject: ${d.why}`);
          return this.reject(d.reply);
        case 'directory': {
          // The directory names a catalogue reply; it is rendered with this policy's overrides.
          this.step('rcpt', 'recipient access', `${d.accept ? 'accept' : 'reject'}: ${d.why}`);
          if (!d.accept) return this.reject(d.reply, d.vars);
          // rcpt.ok is what the session says to an accepted recipient anyway.
          return this.rcptRate(f, d.reply === 'rcpt.ok' ? ACCEPT : { kind: 'accept', reply: this.policy.replies.render(d.reply, d.vars) });
        }
        case 'accept':
          this.step('rcpt', 'recipient access', `accept: ${d.why}`);
          return this.rcptRate(f, ACCEPT);
      }
    });
  }

  /**
   * Recipients per hour per client IP and per sender: an accepted RCPT counts for both, or for
   * neither. `accepted` is what the recipient gets when it is under the limits.
   */
  private rcptRate(f: RcptFacts, accepted: Verdict): MaybeAsync<Verdict> {
    const p = this.policy.config;
    if (p.recipients_per_hour === null && p.recipients_per_hour_per_sender === null) return accepted;
    const sender = senderKey(f);
    const limits: [string, number | null, string][] = [
      [`rcpt/ip/${this.ip}`, p.recipients_per_hour, `recipients per hour from ${this.client.ip}`],
      [`rcpt/sender/${sender}`, p.recipients_per_hour_per_sender, `recipients per hour from <${sender}>`],
    ];
    return (async (): Promise<Verdict> => {
      const taken: string[] = [];
      for (const [key, limit, what] of limits) {
        if (limit === null) continue;
        const refused = await this.overLimit(key, limit);
        this.step('rcpt', `${what} (max ${limit})`, refused ? 'limit reached' : 'under the limit');
        if (refused) {
          const now = this.engine.clock();
          for (const k of taken) await this.engine.counters.hit(k, HOUR_MS, now, -1);
          return this.reject('rcpt.rate-limited');
        }
        taken.push(key);
      }
      return accepted;
    })();
  }

  private get authFailureKey(): string {
    return `authfail/ip/${this.ip}`;
  }

  /**
   * AUTH from this IP: each attempt counts as a failure from the start (so parallel sessions
   * cannot all slip through before their failures are counted) and is given back if it succeeds.
   * Past `auth.max_failures_per_ip` within the window: 421 4.7.0, unchecked.
   */
  authStart(): MaybeAsync<Verdict> {
    const auth = this.engine.opts.config.auth;
    if (auth === undefined) return ACCEPT;
    return this.engine.counters.hit(this.authFailureKey, auth.failure_window, this.engine.clock(), 1).then((attempts) => {
      const over = attempts > auth.max_failures_per_ip;
      this.step('auth', `AUTH failures from ${this.client.ip} (max ${auth.max_failures_per_ip})`, `${attempts - 1}${over ? ': refused' : ''}`);
      return over ? this.reject('auth.too-many-failures', {}, true) : ACCEPT;
    });
  }

  /** The AUTH did not fail (it succeeded, or could not be checked now): its attempt no longer counts. */
  authCleared(): void {
    const auth = this.engine.opts.config.auth;
    if (auth !== undefined) void this.engine.counters.hit(this.authFailureKey, auth.failure_window, this.engine.clock(), -1);
  }

  /**
   * A failed AUTH counts against the client IP: the answer waits `failure_delay` times the IP's
   * failures in the window (so guessing slows down across sessions, not just within one), and the
   * failure that reaches the limit gets 421 4.7.0 and the connection is closed.
   */
  authFailed(): MaybeAsync<AuthFailureVerdict> {
    const auth = this.engine.opts.config.auth;
    if (auth === undefined) return { delayMs: 0, verdict: this.reject('auth.invalid-credentials') };
    // authStart counted this attempt already.
    return this.engine.counters.hit(this.authFailureKey, auth.failure_window, this.engine.clock(), 0).then((failures) => {
      const over = failures >= auth.max_failures_per_ip;
      this.step('auth', `AUTH failures from ${this.client.ip} (max ${auth.max_failures_per_ip})`, `${failures}${over ? ': limit reached' : ''}`);
      return {
        delayMs: auth.failure_delay * Math.min(failures, auth.max_failures_per_ip),
        verdict: over ? this.reject('auth.too-many-failures', {}, true) : this.reject('auth.invalid-credentials'),
      };
    });
  }

  /**
   * Sender authentication (`sender_auth:`) of one message: SPF from the envelope at once, DKIM as
   * the body arrives, ARC and DMARC at the end; the Authentication-Results header and the verdict
   * per this policy's settings (sender-authentication.ts).
   */
  messageCheck(f: MailFacts): MessageCheck | null {
    const config = this.engine.opts.config;
    if (config.sender_auth === undefined) return null;
    const settings = senderAuthFor(config.sender_auth, this.policyName);
    if (!settings.check) return null;
    if (settings.skip_relay_clients && (this.policy.relays || isAuthenticated(f))) {
      this.step('data', 'sender authentication', 'skipped: a client that may relay sends outbound mail');
      return null;
    }
    const sender = f.reversePath === null ? '' : `${unquoteLocalPart(f.reversePath.localPart)}@${normalizeDomain(f.reversePath.domain)}`;
    const check = new SenderAuthCheck({
      ip: this.client.ip,
      helo: f.helo,
      sender,
      hostname: this.engine.hostname,
      dns: this.engine.opts.dns,
      minKeyBits: settings.min_key_bits,
      maxHeaderBytes: config.limits.max_header_size,
    });
    return {
      write: (chunk) => check.write(chunk),
      abort: () => check.abort(),
      get backlogged() {
        return check.backlogged;
      },
      drained: () => check.drained(),
      finish: async () => {
        const results = await check.finish();
        const header = authenticationResultsHeader(this.engine.hostname, results);
        const d = decideSenderAuth(results, settings, this.engine.opts.random);
        this.step('data', 'sender authentication', `${d.kind}${d.kind === 'accept' && d.hold ? ' (held)' : ''}: ${d.why}`);
        return d.kind === 'reject'
          ? { verdict: this.reject(d.reply), hold: false, header }
          : { verdict: ACCEPT, hold: d.hold, header };
      },
    };
  }

  /** Counts one more in the key's hour; true (and the count given back) when that is over `limit`. */
  private async overLimit(key: string, limit: number): Promise<boolean> {
    const now = this.engine.clock();
    const total = await this.engine.counters.hit(key, HOUR_MS, now, 1);
    if (total <= limit) return false;
    await this.engine.counters.hit(key, HOUR_MS, now, -1);
    return true;
  }
}

function isAuthenticated(f: MailFacts): boolean {
  return f.authenticatedUser !== undefined && f.authenticatedUser !== null;
}

/** The sender address the per-sender counters use: lower case; "" for the null sender. */
function senderKey(f: MailFacts): string {
  const s = f.reversePath;
  return s === null ? '' : `${unquoteLocalPart(s.localPart)}@${normalizeDomain(s.domain)}`.toLowerCase();
}
