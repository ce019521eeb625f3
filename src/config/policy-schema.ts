/**
 * The access-control sections of the config file: `sender_groups:` (the host access table),
 * `policies:` (mail-flow policies, with the predefined ACCEPTED, THROTTLED, TRUSTED, BLOCKED and
 * RELAYED that an administrator may change field by field), `recipients:` (valid addresses of the
 * local domains, a block list) and `senders:` (a block list).
 *
 *   sender_groups:                        # first match wins
 *     - { name: BLOCKLIST, match: [ip: 203.0.113.0/24, dnsbl: bl.example.test], policy: BLOCKED }
 *     - { name: PARTNERS, match: [rdns: .partner.test], policy: TRUSTED }
 *     - { name: ALL, match: [all], policy: ACCEPTED }
 *   policies:
 *     THROTTLED: { recipients_per_hour: 50 }
 *     STRICT: { action: accept, reverse_dns: require_fcrdns, verify_sender_domain: true }
 *   recipients:
 *     valid: [alice@example.test, "@lists.example.test"]
 *     blocked: [spamtrap@example.test]
 *
 * Cross-references (a group naming an unknown policy) are checked by `checkPolicyReferences`,
 * which the root schema runs once every section is parsed.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseMailbox } from '../smtp/mailbox.js';
import { replyOverridesSchema, type ReplyOverrides } from './reply-override.js';
import { didYouMean } from './suggest.js';
import { positiveSizeSchema } from './units.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NAME_EXPECTED = 'expected a name of letters, digits, "_", "." or "-"';
const ONE_LINE_ASCII = /^[\x20-\x7e]{1,200}$/;
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*$/;

// ── sender groups ──────────────────────────────────────────────────────────────────────────

/** One matcher of a sender group; a group matches when any of its matchers does. */
export type SenderGroupMatcher =
  | { readonly kind: 'all' }
  /** Addresses and CIDR blocks, IPv4 or IPv6: "203.0.113.0/24", "2001:db8::/32", "::1". */
  | { readonly kind: 'ip'; readonly ranges: readonly string[] }
  /**
   * Forward-confirmed reverse-DNS names: "mail.example.test" (exact), ".example.test" (any name
   * below it), "/^mx\d+\.example\.test$/" (a regular expression, case-insensitive).
   */
  | { readonly kind: 'rdns'; readonly patterns: readonly string[] }
  /** DNSBL zones: listed when the reversed address has an A record 127.0.0.x in the zone. */
  | { readonly kind: 'dnsbl'; readonly zones: readonly string[] };

export const MATCHER_KINDS = ['ip', 'rdns', 'dnsbl'] as const;
const MATCHER_EXPECTED = 'expected all, or one of ip: ADDRESS/CIDR, rdns: NAME | .SUFFIX | /REGEX/, dnsbl: ZONE';

/** "203.0.113.0/24" → null when fine, or what is wrong. */
export function ipRangeProblem(text: string): string | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return `"${text}" is not an IP address or CIDR block like 203.0.113.0/24 or 2001:db8::/32`;
  if (slash >= 0) {
    const bits = text.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `"${text}": the prefix length must be 0 to ${max}`;
  }
  return null;
}

/** An rDNS pattern → null when fine, or what is wrong. */
export function rdnsPatternProblem(text: string): string | null {
  if (text.length > 2 && text.startsWith('/') && text.endsWith('/')) {
    try {
      new RegExp(text.slice(1, -1), 'i');
      return null;
    } catch (err) {
      return `"${text}" is not a valid regular expression: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  const name = text.startsWith('.') ? text.slice(1) : text;
  return HOST_NAME.test(name) ? null : `"${text}" is not a host name, a .suffix or a /regular expression/`;
}

function domainProblem(text: string): string | null {
  return HOST_NAME.test(text) ? null : `"${text}" is not a DNS zone name like bl.example.test`;
}

const CHECKS: Readonly<Record<(typeof MATCHER_KINDS)[number], (s: string) => string | null>> = {
  ip: ipRangeProblem,
  rdns: rdnsPatternProblem,
  dnsbl: domainProblem,
};

function describe(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : JSON.stringify(value);
}

/** `all`, or a one-key mapping whose value is one text or a list of texts. */
export const senderGroupMatcherSchema = z.unknown().transform((input, ctx): SenderGroupMatcher => {
  if (input === 'all') return { kind: 'all' };
  if (typeof input === 'string') {
    ctx.addIssue({ code: 'custom', message: `unknown matcher "${input}"${didYouMean(input, ['all'])}; ${MATCHER_EXPECTED}`, input });
    return z.NEVER;
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input) || Object.keys(input).length !== 1) {
    ctx.addIssue({ code: 'custom', message: MATCHER_EXPECTED, input });
    return z.NEVER;
  }
  const [key, value] = Object.entries(input)[0];
  if (!(MATCHER_KINDS as readonly string[]).includes(key)) {
    ctx.addIssue({
      code: 'custom', path: [key], params: { at: 'key' }, input,
      message: `unknown matcher${didYouMean(key, [...MATCHER_KINDS, 'all'])}; ${MATCHER_EXPECTED}`,
    });
    return z.NEVER;
  }
  const kind = key as (typeof MATCHER_KINDS)[number];
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) {
    ctx.addIssue({ code: 'custom', path: [key], message: 'needs at least 1 entry', input });
    return z.NEVER;
  }
  const texts: string[] = [];
  list.forEach((item, i) => {
    const at = Array.isArray(value) ? [key, i] : [key];
    if (typeof item !== 'string') {
      ctx.addIssue({ code: 'custom', path: at, message: `expected text, got ${describe(item)}`, input });
      return;
    }
    // Names compare in lower case and without the root's trailing dot; addresses and regexes as written.
    const text = kind === 'ip' || item.startsWith('/') ? item : item.toLowerCase().replace(/\.$/, '');
    const problem = CHECKS[kind](text);
    if (problem !== null) ctx.addIssue({ code: 'custom', path: at, message: problem, input });
    else texts.push(text);
  });
  if (texts.length !== list.length) return z.NEVER;
  switch (kind) {
    case 'ip': return { kind, ranges: texts };
    case 'rdns': return { kind, patterns: texts };
    case 'dnsbl': return { kind, zones: texts };
  }
});

export const senderGroupSchema = z.strictObject({
  name: z.string().regex(NAME, { error: NAME_EXPECTED }),
  /** Any of these matching puts the client in the group. */
  match: z.array(senderGroupMatcherSchema).min(1),
  /** The mail-flow policy for clients of this group (a key of `policies:` or a predefined one). */
  policy: z.string().regex(NAME, { error: NAME_EXPECTED }),
});

export type SenderGroupConfig = z.output<typeof senderGroupSchema>;

/** The embedded default: loopback relays (so `npm start` and its test mail work), everyone else is ACCEPTED. */
export const DEFAULT_SENDER_GROUPS = [
  { name: 'RELAYLIST', match: [{ ip: ['127.0.0.0/8', '::1'] }], policy: 'RELAYED' },
  { name: 'ALL', match: ['all'], policy: 'ACCEPTED' },
];

export const senderGroupsSchema = z
  .array(senderGroupSchema)
  .min(1)
  .superRefine((groups, ctx) => {
    groups.forEach((g, i) => {
      const first = groups.findIndex((other) => other.name === g.name);
      if (first < i) {
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate sender group name "${g.name}" (also sender_groups[${first}].name)` });
      }
    });
  });

// ── mail-flow policies ─────────────────────────────────────────────────────────────────────

export const POLICY_ACTIONS = ['accept', 'relay', 'reject', 'tcprefuse'] as const;
export const REVERSE_DNS_CHECKS = ['none', 'require_ptr', 'require_fcrdns'] as const;
export const REJECT_AT = ['rcpt', 'connect'] as const;

export type PolicyAction = (typeof POLICY_ACTIONS)[number];
export type ReverseDnsCheck = (typeof REVERSE_DNS_CHECKS)[number];

/** A mail-flow policy with every field resolved (predefined defaults and the file merged). */
export interface MailFlowPolicyConfig {
  /** accept: local and relay domains; relay: any domain; reject: 554 5.7.1 greeting; tcprefuse: close without a greeting. */
  readonly action: PolicyAction;
  /** Trusted clients see queue depth and connection counts in HELP STATUS. */
  readonly trusted: boolean;
  /** Text after "ESMTP" in the greeting; null: the listener's banner. */
  readonly banner: string | null;
  /** Bytes; null: `limits.max_message_size`. Advertised in EHLO SIZE; larger → 552 5.3.4. */
  readonly max_message_size: number | null;
  /** null: `limits.max_recipients`. One more → 452 4.5.3. At least 100 for accept/relay. */
  readonly max_recipients_per_message: number | null;
  /** null: `limits.max_messages_per_connection`. The next MAIL → 421 4.7.0. */
  readonly max_messages_per_connection: number | null;
  /** Concurrent connections from one client IP on a listener; one more → 421 4.7.0. null: no limit. */
  readonly max_connections_per_ip: number | null;
  /** Messages (accepted MAIL commands) per hour per client IP; one more → 450 4.7.1. null: no limit. */
  readonly messages_per_hour: number | null;
  /** Accepted recipients per hour per client IP; one more → 453 4.5.3. null: no limit. */
  readonly recipients_per_hour: number | null;
  /** Accepted recipients per hour per sender address; one more → 453 4.5.3. null: no limit. */
  readonly recipients_per_hour_per_sender: number | null;
  /** none; require_ptr: a PTR record; require_fcrdns: a PTR name whose A/AAAA leads back. 550 5.7.25 / 450 4.7.25. */
  readonly reverse_dns: ReverseDnsCheck;
  /** When the client checks (reverse DNS) reject: at RCPT (default) or at the greeting. */
  readonly reject_at: (typeof REJECT_AT)[number];
  /** MAIL: the sender's domain must exist (MX, or A/AAAA): 553 5.1.8 / 451 4.1.8. */
  readonly verify_sender_domain: boolean;
  /** Code/text overrides per condition (catalogue id), on top of the global `reply_overrides`. */
  readonly reply_overrides: ReplyOverrides;
}

const LIMIT_EXPECTED = 'expected a whole number of at least 1, or none';

/** A positive whole number, or `none` (no limit) → null. */
const limitOrNoneSchema = z.union([z.string(), z.number()], { error: LIMIT_EXPECTED }).transform((input, ctx) => {
  if (input === 'none') return null;
  if (typeof input === 'number' && Number.isSafeInteger(input) && input >= 1) return input;
  ctx.addIssue({ code: 'custom', message: `${LIMIT_EXPECTED}, got ${JSON.stringify(input)}`, input });
  return z.NEVER;
});

const count = z.number().int({ error: 'expected a whole number' }).min(1);

/** A policy as written: every field optional (missing = the predefined policy's value, or the default). */
export const mailFlowPolicySchema = z.strictObject({
  action: z.enum(POLICY_ACTIONS).optional(),
  trusted: z.boolean().optional(),
  banner: z.string().regex(ONE_LINE_ASCII, { error: 'expected one line of printable ASCII, at most 200 characters' }).optional(),
  max_message_size: positiveSizeSchema.optional(),
  max_recipients_per_message: count.optional(),
  max_messages_per_connection: count.optional(),
  max_connections_per_ip: limitOrNoneSchema.optional(),
  messages_per_hour: limitOrNoneSchema.optional(),
  recipients_per_hour: limitOrNoneSchema.optional(),
  recipients_per_hour_per_sender: limitOrNoneSchema.optional(),
  reverse_dns: z.enum(REVERSE_DNS_CHECKS).optional(),
  reject_at: z.enum(REJECT_AT).optional(),
  verify_sender_domain: z.boolean().optional(),
  reply_overrides: replyOverridesSchema.optional(),
});

type PolicyInput = z.output<typeof mailFlowPolicySchema>;

/** A user-defined policy starts from these values. */
export const POLICY_DEFAULTS: MailFlowPolicyConfig = {
  action: 'accept',
  trusted: false,
  banner: null,
  max_message_size: null,
  max_recipients_per_message: null,
  max_messages_per_connection: null,
  max_connections_per_ip: null,
  messages_per_hour: null,
  recipients_per_hour: null,
  recipients_per_hour_per_sender: null,
  reverse_dns: 'none',
  reject_at: 'rcpt',
  verify_sender_domain: false,
  reply_overrides: {},
};

/**
 * The predefined policies, as commercial gateways ship them (messages per connection /
 * recipients per message / message size / connections per IP / recipients per hour):
 * ACCEPTED 1,000 / 1,000 / 100 MB / 1,000 / none — the size, recipient and message counts come
 * from `limits:`, whose defaults are exactly these; THROTTLED 10 / 100 / 1 MB / 10 / 20;
 * TRUSTED like ACCEPTED without hourly limits, and it sees HELP STATUS in full; BLOCKED rejects; RELAYED relays.
 */
export const PREDEFINED_POLICIES: Readonly<Record<string, MailFlowPolicyConfig>> = {
  ACCEPTED: { ...POLICY_DEFAULTS, max_connections_per_ip: 1000 },
  THROTTLED: {
    ...POLICY_DEFAULTS,
    max_messages_per_connection: 10,
    // Commercial gateways ship 20 here, but RFC 5321 §4.5.3.1.8 requires a server to take 100
    // recipients per message; the 20 recipients per hour below throttle the client anyway.
    max_recipients_per_message: 100,
    max_message_size: 1024 ** 2,
    max_connections_per_ip: 10,
    recipients_per_hour: 20,
  },
  TRUSTED: { ...POLICY_DEFAULTS, trusted: true, max_connections_per_ip: 1000 },
  BLOCKED: { ...POLICY_DEFAULTS, action: 'reject' },
  RELAYED: { ...POLICY_DEFAULTS, action: 'relay', trusted: true },
};

function mergePolicy(base: MailFlowPolicyConfig, input: PolicyInput): MailFlowPolicyConfig {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(input)) if (value !== undefined) out[key] = value;
  return out as unknown as MailFlowPolicyConfig;
}

export const policiesSchema = z
  .record(z.string().regex(NAME, { error: NAME_EXPECTED }), mailFlowPolicySchema)
  .superRefine((policies, ctx) => {
    for (const [name, input] of Object.entries(policies)) {
      const merged = mergePolicy(PREDEFINED_POLICIES[name] ?? POLICY_DEFAULTS, input);
      const accepting = merged.action === 'accept' || merged.action === 'relay';
      if (accepting && merged.max_recipients_per_message !== null && merged.max_recipients_per_message < 100) {
        ctx.addIssue({
          code: 'custom', path: [name, 'max_recipients_per_message'],
          message: 'must be at least 100 for a policy that accepts mail (RFC 5321 §4.5.3.1.8: a server accepts 100 recipients per message)',
        });
      }
    }
  })
  .transform((policies): Readonly<Record<string, MailFlowPolicyConfig>> => {
    const out: Record<string, MailFlowPolicyConfig> = { ...PREDEFINED_POLICIES };
    for (const [name, input] of Object.entries(policies)) out[name] = mergePolicy(PREDEFINED_POLICIES[name] ?? POLICY_DEFAULTS, input);
    return out;
  });

// ── recipients and senders ────────────────────────────────────────────────────────────────

const ADDRESS_EXPECTED = 'expected an address like user@example.test, or @example.test for the whole domain';

/**
 * "user@example.test" or "@example.test" (every address of the domain), in lower case: domains
 * are case-insensitive (RFC 5321 §2.4) and Postern compares local parts case-insensitively too,
 * as Postfix's lookup tables do. A trailing dot in the domain is dropped.
 */
export const addressPatternSchema = z.string({ error: ADDRESS_EXPECTED }).transform((input, ctx) => {
  const text = input.trim().replace(/\.$/, '');
  if (text.startsWith('@')) {
    if (HOST_NAME.test(text.slice(1))) return text.toLowerCase();
  } else {
    const m = parseMailbox(text);
    if (m !== null && !m.domain.startsWith('[')) return `${m.localPart}@${m.domain}`.toLowerCase();
  }
  ctx.addIssue({ code: 'custom', message: `${ADDRESS_EXPECTED}, got ${JSON.stringify(input)}`, input });
  return z.NEVER;
});

export const recipientsSchema = z.strictObject({
  /** The users of the local domains (`domains.local`); anyone else there gets 550 5.1.1. postmaster always exists. */
  valid: z.array(addressPatternSchema).default([]),
  /** Never accepted, from anyone: 550 5.7.1. */
  blocked: z.array(addressPatternSchema).default([]),
});

export const sendersSchema = z.strictObject({
  /** MAIL FROM these → 550 5.7.1. */
  blocked: z.array(addressPatternSchema).default([]),
});

export type RecipientsConfig = z.output<typeof recipientsSchema>;
export type SendersConfig = z.output<typeof sendersSchema>;

// ── cross-references and warnings ─────────────────────────────────────────────────────────

interface PolicySections {
  readonly sender_groups: readonly SenderGroupConfig[];
  readonly policies: Readonly<Record<string, MailFlowPolicyConfig>>;
}

/** Every group names a policy that exists (run by the root schema once all sections are parsed). */
export function checkPolicyReferences(config: PolicySections, ctx: z.RefinementCtx): void {
  // Runs even when a section failed to parse (its value is then the raw input): stay defensive.
  if (!Array.isArray(config.sender_groups)) return;
  const known = [...new Set([...Object.keys(PREDEFINED_POLICIES), ...Object.keys(config.policies ?? {})])];
  config.sender_groups.forEach((g: Partial<SenderGroupConfig> | undefined, i) => {
    if (typeof g?.policy === 'string' && !known.includes(g.policy)) {
      ctx.addIssue({
        code: 'custom', path: ['sender_groups', i, 'policy'],
        message: `unknown policy "${g.policy}"${didYouMean(g.policy, known) || `; known policies: ${known.join(', ')}`}`,
      });
    }
  });
}

/** Findings that do not stop the config from loading. */
export function policyConfigWarnings(config: PolicySections & {
  readonly recipients: RecipientsConfig;
  readonly domains: { readonly local: readonly string[] };
}): { path: (string | number)[]; message: string }[] {
  const warnings: { path: (string | number)[]; message: string }[] = [];
  const catchAll = config.sender_groups.findIndex((g) => g.match.some((m) => m.kind === 'all'));
  if (catchAll < 0) {
    warnings.push({
      path: ['sender_groups'],
      message: 'no group matches every client (match: [all]); a client that matches no group is refused (554 5.7.1)',
    });
  } else if (catchAll < config.sender_groups.length - 1) {
    warnings.push({
      path: ['sender_groups', catchAll + 1],
      message: `sender_groups[${catchAll}] matches every client, so this group and those after it never apply`,
    });
  }
  const local = new Set(config.domains.local);
  config.recipients.valid.forEach((a, i) => {
    const domain = a.slice(a.lastIndexOf('@') + 1);
    if (!local.has(domain)) {
      warnings.push({ path: ['recipients', 'valid', i], message: `${domain} is not in domains.local, so this entry never applies` });
    }
  });
  return warnings;
}

/** The commented defaults of these sections, for DEFAULT_CONFIG_YAML (parses to what an empty file gives, but for the quick start's recipients.valid). */
export const POLICY_DEFAULT_YAML = `\
sender_groups:                       # the host access table: first match wins; a client no group matches is refused
  - name: RELAYLIST                  # loopback may send anywhere (the README's test mail)
    match: [ip: [127.0.0.0/8, "::1"]]
    policy: RELAYED
  - name: ALL
    match: [all]
    policy: ACCEPTED
# Matchers (a group matches when any of its matchers does):
#   ip: 203.0.113.0/24               an address or CIDR block, IPv4 or IPv6; several: ip: [a, b]
#   rdns: mail.example.test          forward-confirmed reverse DNS: exact, .example.test (below it),
#                                    or "/^mx\\\\d+\\\\.example\\\\.test$/" (regular expression, any case)
#   dnsbl: bl.example.test           listed when the reversed address has an A record 127.0.0.x
#   all                              every client
# e.g.  - { name: BLOCKLIST, match: [ip: 203.0.113.0/24, dnsbl: bl.example.test], policy: BLOCKED }

policies: {}                         # change the predefined policies field by field, or add your own, e.g.
#  THROTTLED: { recipients_per_hour: 50 }
#  STRICT: { reverse_dns: require_fcrdns, verify_sender_domain: true, messages_per_hour: 100 }
# Predefined (fields not shown have the defaults below):
#  ACCEPTED:  { action: accept, max_connections_per_ip: 1000 }
#  THROTTLED: { action: accept, max_messages_per_connection: 10, max_recipients_per_message: 100,
#               max_message_size: 1MB, max_connections_per_ip: 10, recipients_per_hour: 20 }
#  TRUSTED:   { action: accept, trusted: true, max_connections_per_ip: 1000 }
#  BLOCKED:   { action: reject }
#  RELAYED:   { action: relay, trusted: true }
# Every field, with its default:
#    action: accept                   # accept: local and relay domains; relay: any domain;
#                                     # reject: 554 5.7.1 greeting, then only QUIT; tcprefuse: close, no greeting
#    trusted: false                   # HELP STATUS shows it the queue and the connections
#    banner: Postern                  # greeting text after ESMTP; default: the listener's banner
#    max_message_size: 100MB          # default: limits.max_message_size; larger: 552 5.3.4
#    max_recipients_per_message: 1000 # default: limits.max_recipients; at least 100; one more: 452 4.5.3
#    max_messages_per_connection: 1000  # default: limits.max_messages_per_connection; next MAIL: 421 4.7.0
#    max_connections_per_ip: none     # at once, per listener; one more: 421 4.7.0 at the greeting
#    messages_per_hour: none          # per client IP; one more MAIL: 450 4.7.1
#    recipients_per_hour: none        # per client IP; one more RCPT: 453 4.5.3
#    recipients_per_hour_per_sender: none  # per sender address; one more RCPT: 453 4.5.3
#    reverse_dns: none                # none | require_ptr | require_fcrdns: 550 5.7.25, DNS trouble 450 4.7.25
#    reject_at: rcpt                  # rcpt | connect (then as the greeting: 554 5.7.25 / 421 4.7.25)
#    verify_sender_domain: false      # the MAIL FROM domain must exist: 553 5.1.8, DNS trouble 451 4.1.8
#    reply_overrides: {}              # per condition, as the global reply_overrides

recipients:
  valid: ["@example.test"]           # the users of domains.local ("@example.test": all of it); others: 550 5.1.1;
                                     # not used with mailboxes.users_file; default: []
  blocked: []                        # never accepted, from anyone: 550 5.7.1

senders:
  blocked: []                        # MAIL FROM these ("user@domain" or "@domain"): 550 5.7.1
`;
