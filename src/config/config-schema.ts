/**
 * The schema of Postern's one YAML config file, and the parsed `PosternConfig` type.
 *
 * The parsed type keeps the file's snake_case keys so a value can be traced to its line. Sizes
 * are turned into bytes, durations into milliseconds, listen addresses into { host, port }.
 * Every section is optional and has defaults; unknown keys are refused (the loader names them
 * with the closest known key). Each top-level section is a schema of its own, so the policy
 * sections (sender_groups, policies, domains, recipient access, …) are added beside them, with
 * their cross-references (a group naming an unknown policy) checked in a superRefine on the
 * root schema, without restructuring.
 *
 * Relative paths (store.path) are resolved by the loader, not here: against the config file's
 * directory, or the process's working directory for the embedded default.
 */
import { hostname as osHostname } from 'node:os';
import { z } from 'zod';
import { formatListenAddress, listenAddressesCollide, listenAddressSchema } from './listen-address.js';
import { replyOverridesSchema } from './reply-override.js';
import { dnsSchema, domainsSchema } from './domains-schema.js';
import { bounceProfilesSchema, deliverySchema, postmasterSchema, softBounceSchema } from './delivery-schema.js';
import { checkPolicyReferences, DEFAULT_SENDER_GROUPS, policiesSchema, policyConfigWarnings, recipientsSchema, senderGroupsSchema, sendersSchema } from './policy-schema.js';
import { authSchema, LISTENER_AUTH_MODES, LISTENER_TLS_MODES, tlsSchema } from './tls-schema.js';
import { checkSenderAuthReferences, senderAuthSchema } from './sender-auth-schema.js';
import { dkimSchema } from './dkim-schema.js';
import { adminSchema } from './admin-schema.js';
import { mailboxesSchema } from './mailboxes-schema.js';
import { formatDuration, positiveDurationSchema, positiveSizeSchema, sizeSchema } from './units.js';

/** A path into the config file: keys and array indexes. */
export type ConfigPath = readonly (string | number)[];

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ONE_LINE_ASCII = /^[\x20-\x7e]{1,200}$/;

/** A whole number of things, at least `minimum`. */
const count = (minimum: number, message?: string) =>
  z.number().int({ error: 'expected a whole number' }).min(minimum, message === undefined ? undefined : { error: message });

// ── store ───────────────────────────────────────────────────────────────────────────────────
/**
 * The durable queue. Only `sqlite` today; a shared `postgres` store becomes a second object in
 * a discriminated union on `kind`.
 */
export const storeSchema = z.strictObject({
  kind: z.literal('sqlite').default('sqlite'),
  /** Directory of the SQLite queue and message bodies; relative to the config file's directory. */
  path: z.string().min(1).default('./var/queue'),
  /** Free disk below this → 452 4.3.1 to MAIL and DATA. */
  min_free_space: sizeSchema.default(100 * 1024 ** 2),
});

// ── listeners ───────────────────────────────────────────────────────────────────────────────
export const listenerSchema = z.strictObject({
  name: z.string().regex(NAME, { error: 'expected a name of letters, digits, "_", "." or "-"' }),
  listen: listenAddressSchema,
  /** Text after "ESMTP" in the 220 greeting. */
  banner: z.string().regex(ONE_LINE_ASCII, { error: 'expected one line of printable ASCII, at most 200 characters' }).default('Postern'),
  /** Total connections on this listener; one more gets 421 4.7.0 at the greeting. */
  max_connections: count(1).default(1000),
  /** none | starttls (offered, RFC 3207) | implicit (TLS from the first byte, RFC 8314). Needs tls.cert/key. */
  tls: z.enum(LISTENER_TLS_MODES).default('none'),
  /** Only EHLO/STARTTLS/NOOP/RSET/QUIT before TLS; the rest gets 530 5.7.0. */
  require_tls: z.boolean().default(false),
  /** none | optional (AUTH offered) | required (MAIL needs AUTH: 530 5.7.0). PLAIN and LOGIN, RFC 4954. */
  auth: z.enum(LISTENER_AUTH_MODES).default('none'),
  /** Offer AUTH over plaintext too (otherwise 538 5.7.11 before TLS). */
  auth_without_tls: z.boolean().default(false),
  /**
   * An authenticated client's MAIL FROM must be an address of its user (the address or one of
   * its aliases, as the user directory says); otherwise 553 5.7.1. false: any sender.
   */
  sender_login_match: z.boolean().default(true),
});

const DEFAULT_LISTENERS = [{ name: 'inbound', listen: '127.0.0.1:2525' }];

export const listenersSchema = z
  .array(listenerSchema)
  .min(1, { error: 'needs at least one listener' })
  .superRefine((listeners, ctx) => {
    listeners.forEach((listener, i) => {
      const earlierName = listeners.findIndex((other) => other.name === listener.name);
      if (earlierName < i) {
        ctx.addIssue({
          code: 'custom', path: [i, 'name'],
          message: `duplicate listener name "${listener.name}" (also listeners[${earlierName}].name)`,
        });
      }
      const earlierAddress = listeners.findIndex((other, j) => j < i && listenAddressesCollide(other.listen, listener.listen));
      if (earlierAddress >= 0) {
        ctx.addIssue({
          code: 'custom', path: [i, 'listen'],
          message: `${formatListenAddress(listener.listen)} collides with listeners[${earlierAddress}].listen (${formatListenAddress(listeners[earlierAddress].listen)})`,
        });
      }
    });
  });

// ── limits ──────────────────────────────────────────────────────────────────────────────────
/** Session limits (per listener overridable later; mail-flow policies may set their own). */
export const limitsSchema = z.strictObject({
  /** Advertised in EHLO SIZE; larger → 552 5.3.4. */
  max_message_size: positiveSizeSchema.default(100 * 1024 ** 2),
  /** Per message; one more → 452 4.5.3. */
  max_recipients: count(100, 'must be at least 100 (RFC 5321 §4.5.3.1.8: a server accepts 100 recipients per message)').default(1000),
  /** Bad commands in one session; the next one gets 421 4.7.0 and the connection closes. */
  max_errors: count(1).default(4),
  /** NOOP/VRFY/HELP/RSET… without a mail transaction; one more → 421 4.7.0. */
  max_commands_without_transaction: count(1).default(100),
  /** Messages in one connection; the next MAIL gets 421 4.7.0. */
  max_messages_per_connection: count(1).default(1000),
  /** Header lines of one message; more → 552 5.3.4. */
  max_header_lines: count(1).default(1000),
  /** Header bytes of one message; more → 552 5.3.4. */
  max_header_size: positiveSizeSchema.default(1024 ** 2),
  /** Total time one session may last; then 421 4.4.2. */
  session_time_cap: positiveDurationSchema.default(15 * 60_000),
  /** Bytes per second a client must sustain while sending message data; slower: 421 4.4.2 (Postfix's smtpd_min_data_rate). 0 = off. */
  min_data_rate: sizeSchema.default(500),
});

// ── timeouts ────────────────────────────────────────────────────────────────────────────────
/** RFC 5321 §4.5.3.2 server-side timeouts; values below the RFC's minimums get a warning. */
export const timeoutsSchema = z.strictObject({
  /** Waiting for the next command (§4.5.3.2.7: at least 5 minutes); then 421 4.4.2. */
  command: positiveDurationSchema.default(5 * 60_000),
  /** Waiting for the next block of DATA (§4.5.3.2.5: at least 3 minutes); then 421 4.4.2. */
  data_block: positiveDurationSchema.default(3 * 60_000),
  /** One DNS lookup. */
  dns: positiveDurationSchema.default(5000),
});

/** RFC 5321 §4.5.3.2 minimums for the timeouts above. */
export const TIMEOUT_MINIMUMS_MS = { command: 5 * 60_000, data_block: 3 * 60_000 } as const;

// ── shutdown, logging ──────────────────────────────────────────────────────────────────────
export const shutdownSchema = z.strictObject({
  /** How long in-flight DATA may finish after SIGTERM before sessions are cut. */
  grace: positiveDurationSchema.default(30_000),
});

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const loggingSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info'),
});

// ── the whole file ──────────────────────────────────────────────────────────────────────────
export const posternConfigSchema = z.strictObject({
  /** Our name in the greeting, EHLO, Received: headers and DSNs. */
  hostname: z
    .string()
    .regex(HOSTNAME, { error: 'expected a host name like mx.example.test' })
    .default(() => osHostname()),
  store: storeSchema.prefault({}),
  listeners: listenersSchema.prefault(DEFAULT_LISTENERS),
  limits: limitsSchema.prefault({}),
  timeouts: timeoutsSchema.prefault({}),
  shutdown: shutdownSchema.prefault({}),
  logging: loggingSchema.prefault({}),
  domains: domainsSchema.prefault({}),
  tls: tlsSchema.prefault({}),
  auth: authSchema.prefault({}),
  dns: dnsSchema.prefault({}),
  delivery: deliverySchema.prefault({}),
  /** Local mailboxes of domains.local: Maildir root, users file, over-quota answer (mailboxes-schema.ts). */
  mailboxes: mailboxesSchema.prefault({}),
  bounce_profiles: bounceProfilesSchema.prefault({}),
  soft_bounce: softBounceSchema,
  postmaster: postmasterSchema.optional(),
  sender_groups: senderGroupsSchema.prefault(DEFAULT_SENDER_GROUPS),
  policies: policiesSchema.prefault({}),
  recipients: recipientsSchema.prefault({}),
  senders: sendersSchema.prefault({}),
  /** Global code/text overrides by catalogue id (see reply-override.ts); policies may add their own. */
  reply_overrides: replyOverridesSchema.prefault({}),
  /** SPF, DKIM, DMARC and ARC at the end of data, and what their results get (sender-auth-schema.ts). */
  sender_auth: senderAuthSchema.prefault({}),
  /** DKIM signing of outgoing mail per sender domain (dkim-schema.ts). */
  dkim: dkimSchema.prefault({}),
  admin: adminSchema.prefault({}),
}).superRefine((config, ctx) => {
  // A TLS listener needs the certificate (tls.cert / tls.key).
  config.listeners.forEach((l, i) => {
    if (l.tls !== 'none' && config.tls.cert === undefined) {
      ctx.addIssue({ code: 'custom', path: ['listeners', i, 'tls'], message: `"${l.tls}" needs tls.cert and tls.key` });
    }
  });
  // LMTP (RFC 2033) to a mail store goes over TCP; a unix socket next hop is not supported yet.
  if (config.mailboxes?.transport === 'lmtp' && config.mailboxes.lmtp_next_hop?.kind === 'unix') {
    ctx.addIssue({
      code: 'custom', path: ['mailboxes', 'lmtp_next_hop'],
      message: 'LMTP over a unix socket is not supported yet; use lmtp://host:port',
    });
  }
}).superRefine(checkPolicyReferences).superRefine(checkSenderAuthReferences);

export type PosternConfig = z.output<typeof posternConfigSchema>;
export type ListenerConfig = PosternConfig['listeners'][number];
export type StoreConfig = PosternConfig['store'];
export type LimitsConfig = PosternConfig['limits'];
export type TimeoutsConfig = PosternConfig['timeouts'];
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A finding about a valid config that is worth saying but does not stop it from loading. */
export interface ConfigWarning {
  readonly path: ConfigPath;
  readonly message: string;
}

/** Warnings for a parsed config: values allowed but below what the RFCs ask for. */
export function configWarnings(config: PosternConfig): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const minimums: readonly [keyof typeof TIMEOUT_MINIMUMS_MS, string][] = [
    ['command', 'RFC 5321 §4.5.3.2.7'],
    ['data_block', 'RFC 5321 §4.5.3.2.5'],
  ];
  for (const [key, rfc] of minimums) {
    const minimum = TIMEOUT_MINIMUMS_MS[key];
    if (config.timeouts[key] < minimum) {
      warnings.push({
        path: ['timeouts', key],
        message: `${formatDuration(config.timeouts[key])} is below the ${formatDuration(minimum)} minimum of ${rfc}; clients on slow links may be cut off`,
      });
    }
  }
  if (config.limits.max_header_size > config.limits.max_message_size) {
    warnings.push({
      path: ['limits', 'max_header_size'],
      message: 'is larger than limits.max_message_size, so it never applies',
    });
  }
  warnings.push(...policyConfigWarnings(config));
  if (config.mailboxes.users_file !== undefined && config.recipients.valid.length > 0) {
    warnings.push({
      path: ['recipients', 'valid'],
      message: 'is not used: mailboxes.users_file says who exists in the local domains',
    });
  }
  return warnings;
}
