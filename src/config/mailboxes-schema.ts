/**
 * `mailboxes:` — where local mailboxes live, which users file names them, and what an over-quota
 * mailbox answers. The root schema (config-schema.ts) holds it as
 * `mailboxes: mailboxesSchema.prefault({})` and the loader resolves its paths with
 * {@link resolveMailboxesPaths} (relative to the config file's directory, like store.path).
 * It lives in the config layer (which imports nothing but smtp); src/mailbox imports it.
 *
 *   mailboxes:
 *     path: ./var/mail               # Maildir root: <path>/<domain>/<local-part>/{cur,new,tmp}
 *     users_file: ./users.yaml       # left out: recipients.valid says who exists (no quotas, aliases)
 *     over_quota: soft               # soft: 452 4.2.2 and retry; hard: 552 5.2.2 and a DSN
 *     local_part_case: insensitive   # Alice@ and alice@ are one mailbox; sensitive: two
 *     transport: maildir             # or lmtp, with lmtp_next_hop: lmtp://127.0.0.1:24
 */
import { z } from 'zod';
import { resolve } from 'node:path';

export const OVER_QUOTA_MODES = ['soft', 'hard'] as const;
export type OverQuotaMode = (typeof OVER_QUOTA_MODES)[number];

export const LOCAL_PART_CASES = ['insensitive', 'sensitive'] as const;
export type LocalPartCase = (typeof LOCAL_PART_CASES)[number];

export const MAILBOX_TRANSPORTS = ['maildir', 'lmtp'] as const;
export type MailboxTransport = (typeof MAILBOX_TRANSPORTS)[number];

/** Where LMTP deliveries go (RFC 2033): a TCP host and port, or a UNIX socket. */
export type LmtpNextHop =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly url: string }
  | { readonly kind: 'unix'; readonly path: string; readonly url: string };

/** RFC 2033 §5: "the LMTP service … MUST NOT be offered on TCP port 25"; 24 is the usual choice. */
export const LMTP_DEFAULT_PORT = 24;

const LMTP_TCP = /^lmtp:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/;
const LMTP_UNIX = /^(?:lmtp:)?unix:(\/.+)$/;
export const LMTP_EXPECTED = 'expected an LMTP next hop like lmtp://127.0.0.1:24 or unix:/run/dovecot/lmtp';

/** The parsed next hop, or null when `url` is not one. */
export function parseLmtpNextHop(url: string): LmtpNextHop | null {
  const unix = LMTP_UNIX.exec(url);
  if (unix) return { kind: 'unix', path: unix[1], url };
  const tcp = LMTP_TCP.exec(url);
  if (!tcp) return null;
  const port = tcp[2] === undefined ? LMTP_DEFAULT_PORT : Number(tcp[2]);
  if (port < 1 || port > 65535) return null;
  const host = tcp[1].startsWith('[') ? tcp[1].slice(1, -1) : tcp[1].toLowerCase();
  return { kind: 'tcp', host, port, url };
}

const lmtpNextHopSchema = z.string().transform((url, ctx) => {
  const hop = parseLmtpNextHop(url.trim());
  if (hop === null) {
    ctx.addIssue({ code: 'custom', message: `${LMTP_EXPECTED}, got ${JSON.stringify(url)}`, input: url });
    return z.NEVER;
  }
  return hop;
});

export const mailboxesSchema = z
  .strictObject({
    /** Maildir root; relative to the config file's directory. */
    path: z.string().min(1).default('./var/mail'),
    /** The users YAML file; relative to the config file's directory. Absent: `recipients.valid` says who exists. */
    users_file: z.string().min(1).optional(),
    /** Over quota (at RCPT, or at delivery): soft → 452 4.2.2 and a retry; hard → 552 5.2.2 and a DSN. */
    over_quota: z.enum(OVER_QUOTA_MODES).default('soft'),
    /** Domains always compare case-insensitively; the local part per this setting. */
    local_part_case: z.enum(LOCAL_PART_CASES).default('insensitive'),
    /** maildir: Postern writes the mailboxes; lmtp: hands each message to a mail store over LMTP. */
    transport: z.enum(MAILBOX_TRANSPORTS).default('maildir'),
    lmtp_next_hop: lmtpNextHopSchema.optional(),
  })
  .superRefine((section, ctx) => {
    if (section.transport === 'lmtp' && section.lmtp_next_hop === undefined) {
      ctx.addIssue({
        code: 'custom', path: ['lmtp_next_hop'],
        message: `is required with transport: lmtp (${LMTP_EXPECTED.replace(/^expected /, '')})`,
      });
    }
  });

export type MailboxesConfig = z.output<typeof mailboxesSchema>;

/** The section with `path` and `users_file` made absolute against `baseDir`. */
export function resolveMailboxesPaths(section: MailboxesConfig, baseDir: string): MailboxesConfig {
  return {
    ...section,
    path: resolve(baseDir, section.path),
    ...(section.users_file === undefined ? {} : { users_file: resolve(baseDir, section.users_file) }),
  };
}

/** The section as DEFAULT_CONFIG_YAML documents it (every key with its default, commented). */
export const MAILBOXES_DEFAULT_YAML = `\
mailboxes:                           # local mailboxes of the domains.local domains
  path: ./var/mail                   # Maildir root: <path>/<domain>/<local-part>/{cur,new,tmp}
# users_file: ./users.yaml           # users, quotas, aliases, forwarding (\`postern users …\`); SMTP AUTH checks
                                     # its passwords; left out: recipients.valid says who exists
  over_quota: soft                   # soft: 452 4.2.2 (retry later); hard: 552 5.2.2 (bounce)
  local_part_case: insensitive       # or sensitive: Alice@ and alice@ are different mailboxes
  transport: maildir                 # or lmtp: hand local mail to a mail store (Dovecot, Cyrus) at lmtp_next_hop
`;
