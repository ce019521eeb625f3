/**
 * Classification: one delivery fact in, one verdict out — delivered, soft (keep and retry), hard
 * (give up, tell the sender) or retry-now (452/453 to RCPT: send the rest in a new transaction at
 * once) — with the RFC 3463 status and the RFC 3464 diagnostic that go into tracking and DSNs.
 * Exactly the "Sending" table of reply-codes.md; ordered rules, first match wins (KumoMTA's
 * bounce-classify, Postfix's failure scopes in smtp_trouble.c).
 *
 * `scope` says how far a failure reaches (Postfix: smtp_sess_fail vs smtp_rcpt_fail): 'session'
 * failures are the host's (connection, greeting, EHLO, TLS, 421), so the next MX host is tried;
 * 'message' and 'recipient' failures are the destination's answer and stand.
 */
import type { ClientCommand } from '../smtp/client/client-events.js';
import { formatServerReply, type ServerReply } from '../smtp/reply-parser.js';
import type { DeliveryFact } from './delivery-fact.js';

export type DeliveryOutcome = 'delivered' | 'soft' | 'hard' | 'retry-now';
export type FailureScope = 'session' | 'message' | 'recipient';

/** RFC 3464 §2.3.6: `Diagnostic-Code: diagnostic-type; diagnostic`. */
export interface Diagnostic {
  /** "smtp" for replies of an SMTP/LMTP peer; "X-Postern" for what Postern found itself. */
  readonly type: 'smtp' | 'X-Postern';
  readonly text: string;
}

export interface Classification {
  readonly outcome: DeliveryOutcome;
  /** RFC 3463 status. */
  readonly status: string;
  readonly diagnostic: Diagnostic;
  readonly scope: FailureScope;
  /** The rule that decided (for tracking: "why soft?"). */
  readonly rule: string;
}

/** The status a reply carries, or `${class}.0.0` when it has none (RFC 3463 §3.1: X.0.0 is "other"). */
function statusOf(reply: ServerReply): string {
  return reply.enhanced ?? `${Math.floor(reply.code / 100)}.0.0`;
}

/** The same status in class 4 (a permanent reply treated as transient). */
export function asTransient(status: string): string {
  return status.replace(/^5\./, '4.');
}

const SESSION_COMMANDS: ReadonlySet<ClientCommand> = new Set(['CONNECT', 'EHLO', 'HELO', 'LHLO', 'STARTTLS', 'RSET', 'QUIT']);

function scopeOf(command: ClientCommand): FailureScope {
  if (SESSION_COMMANDS.has(command)) return 'session';
  return command === 'RCPT' ? 'recipient' : 'message';
}

interface ReplyRule {
  readonly name: string;
  readonly matches: (command: ClientCommand, code: number) => boolean;
  readonly outcome: DeliveryOutcome;
  /** Overrides the scope derived from the command. */
  readonly scope?: FailureScope;
  /** The status when the reply has none (else statusOf). */
  readonly status?: (reply: ServerReply) => string;
}

/** The "Sending" table, for replies. Order matters: the first rule that matches decides. */
export const REPLY_RULES: readonly ReplyRule[] = [
  {
    name: '2xx to the end of data',
    matches: (c, code) => c === 'END-OF-DATA' && code >= 200 && code < 300,
    outcome: 'delivered',
  },
  {
    // RFC 5321 §3.8: the server is going away; whatever was unfinished is tried again.
    name: '421 at any point',
    matches: (_c, code) => code === 421,
    outcome: 'soft',
    scope: 'session',
  },
  {
    // RFC 5321 §4.5.3.1.10: "too many recipients": send the rest in another transaction now.
    name: '452 or 453 to RCPT',
    matches: (c, code) => c === 'RCPT' && (code === 452 || code === 453),
    outcome: 'retry-now',
    status: (r) => r.enhanced ?? '4.5.3',
  },
  {
    // RFC 5321 §4.5.3.1.10: old servers say 552 for "too many recipients"; treat it as transient.
    name: '552 to RCPT',
    matches: (c, code) => c === 'RCPT' && code === 552,
    outcome: 'soft',
    status: (r) => asTransient(r.enhanced ?? '4.5.3'),
  },
  {
    name: 'any 4xx',
    matches: (_c, code) => code >= 400 && code < 500,
    outcome: 'soft',
  },
  {
    name: 'any other 5xx',
    matches: (_c, code) => code >= 500 && code < 600,
    outcome: 'hard',
  },
  {
    // A positive reply that is somebody's last word but not the end of data: a confused peer.
    name: 'unexpected positive reply',
    matches: () => true,
    outcome: 'soft',
    status: () => '4.5.0',
  },
];

/** RFC 5321 command names as a DSN's human part quotes them ("in reply to RCPT TO command"). */
export const COMMAND_WORDS: Readonly<Record<ClientCommand, string>> = {
  CONNECT: 'the initial greeting',
  EHLO: 'EHLO',
  HELO: 'HELO',
  LHLO: 'LHLO',
  STARTTLS: 'STARTTLS',
  MAIL: 'MAIL FROM',
  RCPT: 'RCPT TO',
  DATA: 'DATA',
  'END-OF-DATA': 'end of DATA',
  RSET: 'RSET',
  QUIT: 'QUIT',
};

function classifyReply(command: ClientCommand, reply: ServerReply): Classification {
  const rule = REPLY_RULES.find((r) => r.matches(command, reply.code)) as ReplyRule;
  return {
    outcome: rule.outcome,
    status: rule.status ? rule.status(reply) : statusOf(reply),
    diagnostic: { type: 'smtp', text: formatServerReply(reply) },
    scope: rule.scope ?? scopeOf(command),
    rule: rule.name,
  };
}

function local(outcome: DeliveryOutcome, status: string, text: string, scope: FailureScope, rule: string): Classification {
  return { outcome, status, diagnostic: { type: 'X-Postern', text }, scope, rule };
}

/**
 * The verdict on one fact. Pure: the same fact always gives the same classification; soft_bounce
 * and the bounce profile's limits are applied afterwards ({@link softened}, retry-schedule.ts).
 */
export function classifyFact(fact: DeliveryFact): Classification {
  switch (fact.kind) {
    case 'reply':
      return classifyReply(fact.command, fact.reply);
    case 'session': {
      const f = fact.failure;
      switch (f.kind) {
        case 'reply':
          return classifyReply(f.command, f.reply);
        case 'tls-not-offered':
          return local('soft', '4.7.4', 'TLS is required, but was not offered by the host', 'session', 'TLS failure');
        case 'tls-failed':
          return local('soft', '4.7.5', `Cannot start TLS: ${f.detail}`, 'session', 'TLS failure');
        case 'timeout':
          return local('soft', '4.4.2', `conversation timed out while sending ${COMMAND_WORDS[f.command]}`, 'session', 'connection timed out');
        case 'connection-lost':
          return local('soft', '4.4.2', `lost connection${f.command ? ` while sending ${COMMAND_WORDS[f.command]}` : ''}: ${f.detail}`, 'session', 'connection reset');
        case 'protocol':
          return local('soft', '4.5.0', `protocol error${f.command ? ` after ${COMMAND_WORDS[f.command]}` : ''}: ${f.detail}`, 'session', 'protocol error');
      }
      break;
    }
    case 'refusal': {
      const r = fact.refusal;
      switch (r.kind) {
        case 'smtputf8-not-offered':
          // RFC 6531 §3.2: a message that needs SMTPUTF8 must not go to a server without it.
          return local('hard', '5.6.7', 'SMTPUTF8 is required, but was not offered by the host', 'message', 'SMTPUTF8 needed but not offered');
        case '8bitmime-not-offered':
          // RFC 6152 §3: an 8-bit message cannot be sent to a 7-bit server without conversion.
          return local('hard', '5.6.3', '8BITMIME is required, but was not offered by the host', 'message', '8BITMIME needed but not offered');
        case 'size-exceeded':
          // RFC 1870 §6: the server would refuse it with 552 anyway.
          return local('hard', '5.3.4', `message size ${r.size} exceeds size limit ${r.limit} of the host`, 'message', 'larger than SIZE');
      }
      break;
    }
    case 'connect': {
      const words: Record<typeof fact.failure, string> = {
        refused: 'Connection refused', timeout: 'Connection timed out', unreachable: 'Network is unreachable',
        reset: 'Connection reset', other: 'Connection failed',
      };
      return local('soft', '4.4.1', `connect to ${fact.host}: ${words[fact.failure]}${fact.detail ? ` (${fact.detail})` : ''}`, 'session', 'connection refused, reset or timed out');
    }
    case 'dns':
      switch (fact.failure) {
        case 'nxdomain':
          return local('hard', '5.1.2', `Host or domain name not found. Name service error for name=${fact.domain}: ${fact.detail || 'NXDOMAIN'}`, 'recipient', 'domain does not exist');
        case 'null-mx':
          // RFC 7505 §4.2: 556 5.1.10 for a domain that accepts no mail.
          return local('hard', '5.1.10', `Domain ${fact.domain} does not accept mail (null MX)`, 'recipient', 'null MX');
        case 'no-address':
          return local('hard', '5.1.2', `Host or domain name not found. Name service error for name=${fact.domain}: no MX and no address records`, 'recipient', 'no MX and no A/AAAA');
        case 'mx-hosts-unresolvable':
          return local('hard', '5.4.4', `Unable to route: no address for the MX hosts of ${fact.domain}`, 'recipient', 'MX hosts without addresses');
        case 'temporary':
          return local('soft', '4.4.3', `Host or domain name not found. Name service error for name=${fact.domain}: ${fact.detail || 'try again'}`, 'recipient', 'DNS SERVFAIL or timeout');
      }
      break;
    case 'local-delivered':
      return local('delivered', '2.0.0', fact.detail, 'recipient', 'delivered to the mailbox');
    case 'local-failure':
      switch (fact.failure) {
        case 'mailbox-full':
          return local('soft', '4.2.2', `mailbox full: ${fact.detail}`, 'recipient', 'mailbox full');
        case 'no-space':
          return local('soft', '4.3.1', `insufficient system storage: ${fact.detail}`, 'recipient', 'no space');
        case 'io':
          return local('soft', '4.3.0', `mail system error: ${fact.detail}`, 'recipient', 'local error');
        case 'bad-address':
          return local('hard', '5.1.3', `bad destination mailbox address: ${fact.detail}`, 'recipient', 'bad local address');
      }
      break;
    case 'local-refused':
      // The mailbox layer's own verdict: soft or hard as it says (a local 552 5.2.2 is hard).
      return local(fact.outcome, fact.status, fact.detail ? `${fact.text} (${fact.detail})` : fact.text, 'recipient', 'refused by the local mailbox');
    case 'local-expanded':
      return local('delivered', '2.0.0', fact.detail, 'recipient', fact.mode === 'alias' ? 'alias expanded' : 'forwarded');
    case 'loop':
      return local('hard', '5.4.6', `mail for ${fact.host} loops back to myself`, 'recipient', 'mail loop');
  }
  return local('soft', '4.0.0', 'unclassified failure', 'recipient', 'unclassified');
}

/**
 * The global `soft_bounce: true` switch (Postfix's soft_bounce): a hard verdict is kept and
 * retried, its status moved to class 4.
 */
export function softened(c: Classification): Classification {
  if (c.outcome !== 'hard') return c;
  return { ...c, outcome: 'soft', status: asTransient(c.status), rule: `${c.rule} (soft_bounce)` };
}
