/**
 * The sending side's sections:
 *
 *   delivery:          how Postern delivers: SMTP port, HELO name, concurrency, limits per
 *                      destination, leases, TLS for MX deliveries, RFC 5321 §4.5.3.2 timeouts
 *   bounce_profiles:   when a soft bounce is retried and when it turns hard; `default` plus
 *                      entries per destination domain (each key left out comes from `default`)
 *   soft_bounce:       the global safety switch (Postfix's soft_bounce): every hard bounce
 *                      becomes soft while a configuration is being tried
 *   postmaster:        who is told about a DSN that could not be delivered
 *
 *   delivery: { smtp_port: 25, concurrency: 20, max_connections_per_destination: 10 }
 *   bounce_profiles:
 *     default: { initial_retry: 60s, max_retry_interval: 1h, max_time_in_queue: 72h }
 *     partner.test: { max_time_in_queue: 4h, delay_warning: 1h }
 */
import { z } from 'zod';
import { parseMailbox } from '../smtp/mailbox.js';
import { TLS_MODES } from './domains-schema.js';
import { durationSchema, positiveDurationSchema, positiveSizeSchema } from './units.js';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const DOMAIN_KEY = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const count = (minimum: number) => z.number().int({ error: 'expected a whole number' }).min(minimum);

// ── delivery ────────────────────────────────────────────────────────────────────────────────
/** RFC 5321 §4.5.3.2 client timeouts, with Postfix's defaults where the RFC names none. */
export const deliveryTimeoutsSchema = z.strictObject({
  /** TCP connect (not in the RFC; Postfix smtp_connect_timeout). */
  connect: positiveDurationSchema.default(30_000),
  /** §4.5.3.2.1 initial 220 message: 5 minutes. */
  greeting: positiveDurationSchema.default(5 * 60_000),
  /** EHLO/HELO/LHLO reply (Postfix smtp_helo_timeout). */
  helo: positiveDurationSchema.default(5 * 60_000),
  /** STARTTLS reply and the TLS handshake. */
  starttls: positiveDurationSchema.default(5 * 60_000),
  /** §4.5.3.2.2 MAIL: 5 minutes. */
  mail: positiveDurationSchema.default(5 * 60_000),
  /** §4.5.3.2.3 RCPT: 5 minutes. */
  rcpt: positiveDurationSchema.default(5 * 60_000),
  /** §4.5.3.2.4 DATA initiation: 2 minutes. */
  data_init: positiveDurationSchema.default(2 * 60_000),
  /** §4.5.3.2.5 data block: 3 minutes for each block of the body to be written. */
  data_block: positiveDurationSchema.default(3 * 60_000),
  /** §4.5.3.2.6 DATA termination: 10 minutes for the reply to the final dot. */
  data_term: positiveDurationSchema.default(10 * 60_000),
  /** RSET reply (Postfix smtp_rset_timeout). */
  rset: positiveDurationSchema.default(20_000),
  /** QUIT reply (Postfix smtp_quit_timeout). */
  quit: positiveDurationSchema.default(5 * 60_000),
});

export const deliverySchema = z.strictObject({
  /** false: queue only, never deliver (a node that only accepts). */
  enabled: z.boolean().default(true),
  /** Port for deliveries found by MX lookup (RFC 5321: 25); other ports for tests and air-gapped sites. */
  smtp_port: z.number().int().min(1).max(65535).default(25),
  /** Our name in EHLO; default: `hostname`. */
  helo_name: z.string().regex(HOSTNAME, { error: 'expected a host name like mx.example.test' }).optional(),
  /** Messages delivered at the same time. */
  concurrency: count(1).default(20),
  /** Connections at the same time to one destination (a domain's MX hosts, or a relay's next hop). */
  max_connections_per_destination: count(1).default(10),
  /** Messages sent over one connection before it is closed. */
  max_messages_per_connection: count(1).default(100),
  /** How long an idle connection is kept for the next message to the same host. */
  connection_idle_time: durationSchema.default(5000),
  /** A worker's claim on a message; renewed while it works, expired when it died. */
  lease_time: positiveDurationSchema.default(5 * 60_000),
  /** STARTTLS for deliveries found by MX lookup (relay routes set their own). */
  tls: z.enum(TLS_MODES).default('opportunistic'),
  /** Check the server's certificate (opportunistic TLS to MX hosts usually does not). */
  tls_verify: z.boolean().default(false),
  /** Largest original message returned in full in a DSN (RET=FULL, or no RET and under 10 KB); larger: headers only. */
  dsn_max_returned_size: positiveSizeSchema.default(10 * 1024 ** 2),
  timeouts: deliveryTimeoutsSchema.prefault({}),
});

// ── bounce profiles ─────────────────────────────────────────────────────────────────────────
const profileFields = {
  /** First retry after a soft bounce. */
  initial_retry: positiveDurationSchema,
  /** Each next interval is the last one times this. */
  backoff_factor: z.number().min(1, { error: 'must be at least 1' }).max(100),
  /** Intervals stop growing here. */
  max_retry_interval: positiveDurationSchema,
  /** Retries after the first attempt; one more soft bounce turns hard (5.4.7). */
  max_retries: count(0),
  /** Age at which a soft bounce turns hard (5.4.7). */
  max_time_in_queue: positiveDurationSchema,
  /** Age at which the sender is told the message is delayed. */
  delay_warning: positiveDurationSchema,
  /** How many delay DSNs at most (one per delay_warning period). */
  delay_warnings: count(0),
  send_hard_bounce_dsn: z.boolean(),
  send_delay_dsn: z.boolean(),
  /** Each interval is varied by up to this fraction either way, so retries do not stampede. */
  jitter: z.number().min(0).max(1),
} as const;

export const DEFAULT_BOUNCE_PROFILE = {
  initial_retry: 60_000,
  backoff_factor: 2,
  max_retry_interval: 3_600_000,
  max_retries: 100,
  max_time_in_queue: 72 * 3_600_000,
  delay_warning: 4 * 3_600_000,
  delay_warnings: 1,
  send_hard_bounce_dsn: true,
  send_delay_dsn: true,
  jitter: 0.1,
} as const;

export type BounceProfileConfig = { -readonly [K in keyof typeof DEFAULT_BOUNCE_PROFILE]: K extends 'send_hard_bounce_dsn' | 'send_delay_dsn' ? boolean : number };

const partialProfileSchema = z.strictObject({
  initial_retry: profileFields.initial_retry.optional(),
  backoff_factor: profileFields.backoff_factor.optional(),
  max_retry_interval: profileFields.max_retry_interval.optional(),
  max_retries: profileFields.max_retries.optional(),
  max_time_in_queue: profileFields.max_time_in_queue.optional(),
  delay_warning: profileFields.delay_warning.optional(),
  delay_warnings: profileFields.delay_warnings.optional(),
  send_hard_bounce_dsn: profileFields.send_hard_bounce_dsn.optional(),
  send_delay_dsn: profileFields.send_delay_dsn.optional(),
  jitter: profileFields.jitter.optional(),
});

type PartialProfile = z.output<typeof partialProfileSchema>;

function withoutUndefined(p: PartialProfile): Partial<BounceProfileConfig> {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as Partial<BounceProfileConfig>;
}

export interface BounceProfilesConfig {
  readonly default: BounceProfileConfig;
  /** By lower-cased destination domain, each complete (missing keys taken from `default`). */
  readonly domains: Readonly<Record<string, BounceProfileConfig>>;
}

export const bounceProfilesSchema = z
  .record(z.string(), partialProfileSchema)
  .superRefine((profiles, ctx) => {
    for (const key of Object.keys(profiles)) {
      if (key !== 'default' && !DOMAIN_KEY.test(key)) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'expected "default" or a destination domain like partner.test', params: { at: 'key' } });
      }
    }
  })
  .transform((profiles): BounceProfilesConfig => {
    const base: BounceProfileConfig = { ...DEFAULT_BOUNCE_PROFILE, ...withoutUndefined(profiles.default ?? {}) };
    const domains: Record<string, BounceProfileConfig> = {};
    for (const [key, p] of Object.entries(profiles)) {
      if (key !== 'default') domains[key.toLowerCase()] = { ...base, ...withoutUndefined(p) };
    }
    return { default: base, domains };
  });

// ── soft_bounce, postmaster ─────────────────────────────────────────────────────────────────
/** Postfix's soft_bounce: every hard bounce is kept and retried instead (class 5 becomes 4). */
export const softBounceSchema = z.boolean().default(false);

/** The postmaster's address (RFC 5321 §4.5.1); default postmaster@<hostname>. */
export const postmasterSchema = z
  .string()
  .refine((a) => parseMailbox(a) !== null, { error: 'expected a mail address like postmaster@example.test' });

export type DeliveryConfig = z.output<typeof deliverySchema>;
export type DeliveryTimeoutsConfig = z.output<typeof deliveryTimeoutsSchema>;

/** The sections as DEFAULT_CONFIG_YAML documents them (every key with its default, commented). */
export const DELIVERY_DEFAULT_YAML = `\
delivery:                            # sending: local domains to mailboxes, the rest over SMTP
  enabled: true                      # false: only queue, never deliver
  smtp_port: 25                      # port of MX hosts (tests and air-gapped sites use others)
# helo_name: mx.example.test         # our name in EHLO; default: hostname
  concurrency: 20                    # messages delivered at the same time
  max_connections_per_destination: 10  # per domain (its MX hosts) or relay next hop
  max_messages_per_connection: 100   # then the connection is closed and a new one opened
  connection_idle_time: 5s           # an idle connection waits this long for the next message
  lease_time: 5m                     # a worker's claim on a message; expires if the worker dies
  tls: opportunistic                 # STARTTLS to MX hosts: none | opportunistic | required
  tls_verify: false                  # check the server certificate
  dsn_max_returned_size: 10MB        # larger originals come back as headers only in a DSN
  timeouts:                          # RFC 5321 §4.5.3.2 (Postfix's values where it names none)
    connect: 30s
    greeting: 5m
    helo: 5m
    starttls: 5m
    mail: 5m
    rcpt: 5m
    data_init: 2m
    data_block: 3m
    data_term: 10m
    rset: 20s
    quit: 5m

bounce_profiles:                     # retries of soft bounces; when they turn hard (5.4.7)
  default:
    initial_retry: 60s
    backoff_factor: 2                # 60s, 2m, 4m, … up to max_retry_interval
    max_retry_interval: 1h
    max_retries: 100                 # whichever limit comes first turns the soft bounce hard
    max_time_in_queue: 72h
    delay_warning: 4h                # tell the sender the message is delayed after this long
    delay_warnings: 1                # at most this many delay DSNs
    send_hard_bounce_dsn: true
    send_delay_dsn: true
    jitter: 0.1                      # intervals vary by up to ±10%
# partner.test: { max_time_in_queue: 4h }   # per destination domain; the rest from default

soft_bounce: false                   # true: every hard bounce is kept and retried (testing a config)
# postmaster: postmaster@mx.example.test    # gets DSNs that could not be delivered; default postmaster@hostname
`;
