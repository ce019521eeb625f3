/**
 * The reply catalogue: every reply Postern sends as a server, with its code, RFC 3463 enhanced
 * status code, default text and the situation it is sent in. This is the single source of truth
 * for `shared/reply-codes.md`; `docs/reply-codes.md` is generated from it (`postern codes --markdown`).
 *
 * Texts are templates: `{name}` is filled from the variables given to `reply()`. Nothing outside
 * src/smtp/ writes a reply text of its own; policies pick an entry (and may override it, see
 * reply-override.ts).
 */

export type ReplyStage =
  | 'connection'
  | 'helo'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'other'
  | 'tls-auth';

export interface CatalogueEntry {
  readonly code: number;
  /** RFC 3463 status, or null for the greeting, 354 and the HELO/EHLO 250 (no enhanced code there). */
  readonly enhanced: string | null;
  readonly text: string;
  readonly stage: ReplyStage;
  /** The situation this reply is sent in, as the specification states it. */
  readonly when: string;
}

const entries = {
  // ── Connection ────────────────────────────────────────────────────────────────────────────
  greeting: {
    code: 220, enhanced: null, stage: 'connection', text: '{hostname} ESMTP {banner}',
    when: 'greeting (banner per listener)',
  },
  'connect.rejected': {
    code: 554, enhanced: '5.7.1', stage: 'connection', text: '{hostname} Access denied',
    when: "greeting, when the client's sender group has a REJECT policy; after it only QUIT is honoured",
  },
  'connect.limit': {
    code: 421, enhanced: '4.7.0', stage: 'connection',
    text: '{hostname} Too many connections, try again later',
    when: "greeting, when the listener's or the policy's connection limit (total, per client IP) is reached; then close",
  },
  'service.shutting-down': {
    code: 421, enhanced: '4.3.2', stage: 'connection',
    text: '{hostname} Service shutting down, closing transmission channel',
    when: 'service shutting down: greeting of new connections, and reply to the next command of open sessions while draining; then close',
  },
  'session.idle-timeout': {
    code: 421, enhanced: '4.4.2', stage: 'connection',
    text: '{hostname} Timeout exceeded, closing transmission channel',
    when: 'idle timeout in the current state (RFC 5321 §4.5.3.2); then close',
  },
  'session.time-cap': {
    code: 421, enhanced: '4.4.2', stage: 'connection',
    text: '{hostname} Session time limit exceeded, closing transmission channel',
    when: "the session's total time cap is reached; then close",
  },
  'session.too-many-errors': {
    code: 421, enhanced: '4.7.0', stage: 'connection',
    text: '{hostname} Too many errors, closing transmission channel',
    when: 'too many bad commands in one session; then close',
  },
  'session.too-many-commands': {
    code: 421, enhanced: '4.7.0', stage: 'connection',
    text: '{hostname} Too many commands without a mail transaction, closing transmission channel',
    when: 'too many commands without a transaction in one session; then close',
  },
  'session.max-messages': {
    code: 421, enhanced: '4.7.0', stage: 'connection',
    text: '{hostname} Too many messages in one connection, closing transmission channel',
    when: "the policy's maximum messages per connection reached (answered to the next MAIL); then close",
  },
  'sequence.rejected-session': {
    code: 503, enhanced: '5.5.1', stage: 'connection',
    text: 'Error: access denied, only QUIT is accepted',
    when: 'any command but QUIT after a 554 greeting (RFC 5321 §3.1)',
  },

  // ── HELO / EHLO ───────────────────────────────────────────────────────────────────────────
  'helo.ok': {
    code: 250, enhanced: null, stage: 'helo', text: '{hostname} Hello {client}',
    when: 'HELO accepted (one line); EHLO accepted (this line, then the extensions)',
  },
  'helo.syntax': {
    code: 501, enhanced: '5.5.4', stage: 'helo', text: 'Syntax: {verb} hostname',
    when: 'no argument, or the argument is neither a domain nor an address literal',
  },
  'helo.rejected': {
    code: 550, enhanced: '5.7.1', stage: 'helo', text: 'Helo command rejected: Access denied',
    when: 'the HELO/EHLO name is refused by policy',
  },

  // ── MAIL FROM ─────────────────────────────────────────────────────────────────────────────
  'mail.ok': {
    code: 250, enhanced: '2.1.0', stage: 'mail', text: 'Sender <{address}> OK',
    when: 'sender accepted',
  },
  'sequence.need-helo': {
    code: 503, enhanced: '5.5.1', stage: 'mail', text: 'Error: send HELO/EHLO first',
    when: 'MAIL (or RCPT, DATA, BDAT) before HELO/EHLO',
  },
  'sequence.nested-mail': {
    code: 503, enhanced: '5.5.1', stage: 'mail', text: 'Error: nested MAIL command',
    when: 'MAIL while a transaction is already open',
  },
  'auth.required': {
    code: 530, enhanced: '5.7.0', stage: 'mail', text: 'Authentication required',
    when: 'the listener requires AUTH and the client has not authenticated (RFC 4954)',
  },
  'mail.syntax': {
    code: 501, enhanced: '5.5.4', stage: 'mail', text: 'Syntax: MAIL FROM:<address> [parameters]',
    when: "the command's syntax is broken: no FROM:, no angle brackets, junk after the path",
  },
  'mail.bad-sender': {
    code: 553, enhanced: '5.1.7', stage: 'mail', text: 'Sender address rejected: bad address syntax',
    when: 'the reverse-path parses as a path but is not an acceptable mailbox (bad local-part or domain, UTF-8 without SMTPUTF8)',
  },
  'mail.sender-domain-unknown': {
    code: 553, enhanced: '5.1.8', stage: 'mail', text: 'Sender address rejected: Domain not found',
    when: "sender-domain verification on, and the sender's domain does not exist (NXDOMAIN, or no MX/A/AAAA)",
  },
  'mail.sender-domain-tempfail': {
    code: 451, enhanced: '4.1.8', stage: 'mail',
    text: 'Sender address rejected: Domain lookup failed temporarily',
    when: 'sender-domain verification on, and the lookup failed temporarily (SERVFAIL, timeout)',
  },
  'param.unknown': {
    code: 555, enhanced: '5.5.4', stage: 'mail', text: 'Unsupported parameter: {param}',
    when: 'an unknown MAIL or RCPT parameter (RFC 5321 §4.1.1.11)',
  },
  'param.not-implemented': {
    code: 504, enhanced: '5.5.4', stage: 'mail', text: 'Parameter value not implemented: {param}',
    when: 'a known parameter with a value that is not implemented (e.g. BODY=BINARYMIME)',
  },
  'param.syntax': {
    code: 501, enhanced: '5.5.4', stage: 'mail', text: 'Syntax error in parameter: {param}',
    when: 'a known parameter with a malformed value (SIZE=abc, NOTIFY=SOMETIMES, broken xtext)',
  },
  'mail.size-exceeded': {
    code: 552, enhanced: '5.3.4', stage: 'mail', text: 'Message size exceeds fixed maximum message size',
    when: "SIZE=n above the policy's maximum message size (RFC 1870)",
  },
  'storage.insufficient': {
    code: 452, enhanced: '4.3.1', stage: 'mail', text: 'Insufficient system storage',
    when: 'SIZE=n above what the store can take now, free disk below the configured reserve, or storage ran out while receiving',
  },
  'mail.rate-limited': {
    code: 450, enhanced: '4.7.1', stage: 'mail', text: 'Message rate limit exceeded, try again later',
    when: "the sender's message rate limit (messages per hour per sender IP / sender address) is exhausted",
  },
  'mail.sender-blocked': {
    code: 550, enhanced: '5.7.1', stage: 'mail', text: 'Sender address rejected: Access denied',
    when: 'the sender is blocked by policy (sender address or domain on a block list)',
  },
  'local-error': {
    code: 451, enhanced: '4.3.0', stage: 'mail', text: 'Local error in processing, try again later',
    when: 'local error in processing: the store or a lookup broke unexpectedly; a store write or fsync failed (never a 250 for what is not on disk)',
  },

  // ── RCPT TO ───────────────────────────────────────────────────────────────────────────────
  'rcpt.ok': {
    code: 250, enhanced: '2.1.5', stage: 'rcpt', text: 'Recipient <{address}> OK',
    when: 'recipient accepted',
  },
  'rcpt.forward': {
    code: 251, enhanced: '2.1.5', stage: 'rcpt', text: 'User not local; will forward to <{address}>',
    when: 'forwarding table entry in forward mode',
  },
  'rcpt.refer': {
    code: 551, enhanced: '5.1.6', stage: 'rcpt', text: 'User not local; please try <{address}>',
    when: 'forwarding table entry in refer mode',
  },
  'sequence.need-mail': {
    code: 503, enhanced: '5.5.1', stage: 'rcpt', text: 'Error: need MAIL command',
    when: 'RCPT (or DATA, BDAT) without MAIL',
  },
  'rcpt.syntax': {
    code: 501, enhanced: '5.5.4', stage: 'rcpt', text: 'Syntax: RCPT TO:<address> [parameters]',
    when: "the command's syntax is broken",
  },
  'rcpt.bad-recipient': {
    code: 553, enhanced: '5.1.3', stage: 'rcpt', text: 'Recipient address rejected: bad address syntax',
    when: 'the forward-path parses but is not an acceptable mailbox',
  },
  'rcpt.unknown-user': {
    code: 550, enhanced: '5.1.1', stage: 'rcpt', text: 'Recipient address rejected: User unknown',
    when: 'local domain, unknown user (recipient validation)',
  },
  'rcpt.mailbox-disabled': {
    code: 550, enhanced: '5.2.1', stage: 'rcpt', text: 'Recipient address rejected: Mailbox disabled',
    when: 'the mailbox is disabled',
  },
  'rcpt.mailbox-locked': {
    code: 450, enhanced: '4.2.1', stage: 'rcpt',
    text: 'Recipient address rejected: Mailbox temporarily unavailable',
    when: 'the mailbox is temporarily unavailable (locked, e.g. busy with maintenance)',
  },
  'rcpt.over-quota-soft': {
    code: 452, enhanced: '4.2.2', stage: 'rcpt', text: 'Recipient address rejected: Mailbox full',
    when: 'the mailbox is over quota, and over_quota: soft (the default)',
  },
  'rcpt.over-quota-hard': {
    code: 552, enhanced: '5.2.2', stage: 'rcpt', text: 'Recipient address rejected: Mailbox full',
    when: 'the mailbox is over quota (or the declared SIZE does not fit), and over_quota: hard',
  },
  'rcpt.relay-denied': {
    code: 550, enhanced: '5.7.1', stage: 'rcpt', text: 'Relay access denied',
    when: 'the domain is neither local nor a relay domain, and the client may not relay',
  },
  'rcpt.blocked': {
    code: 550, enhanced: '5.7.1', stage: 'rcpt', text: 'Recipient address rejected: Access denied',
    when: 'the recipient is blocked by the recipient access table',
  },
  'rcpt.rdns-failed': {
    code: 550, enhanced: '5.7.25', stage: 'rcpt',
    text: 'Client host rejected: reverse DNS check failed for {client}',
    when: "the client failed the policy's reverse-DNS check (no PTR, or PTR and forward lookup disagree; RFC 7372)",
  },
  'rcpt.rdns-tempfail': {
    code: 450, enhanced: '4.7.25', stage: 'rcpt',
    text: 'Client host rejected: reverse DNS check could not complete for {client}',
    when: 'the reverse-DNS check could not complete (DNS temporary failure)',
  },
  'rcpt.lookup-tempfail': {
    code: 451, enhanced: '4.4.3', stage: 'rcpt',
    text: 'Recipient address rejected: lookup failed temporarily',
    when: 'the recipient lookup failed temporarily (user directory unreachable)',
  },
  'rcpt.too-many': {
    code: 452, enhanced: '4.5.3', stage: 'rcpt', text: 'Too many recipients',
    when: "too many recipients for this message (the policy's maximum per message; RFC 5321 §4.5.3.1.10)",
  },
  'rcpt.rate-limited': {
    code: 453, enhanced: '4.5.3', stage: 'rcpt', text: 'Too many recipients this hour, try again later',
    when: "the policy's recipients-per-hour limit (per client IP, or per sender address) is exhausted",
  },

  // ── DATA and BDAT ─────────────────────────────────────────────────────────────────────────
  'data.go-ahead': {
    code: 354, enhanced: null, stage: 'data', text: 'Start mail input; end with <CRLF>.<CRLF>',
    when: 'DATA accepted',
  },
  'sequence.need-rcpt': {
    code: 503, enhanced: '5.5.1', stage: 'data', text: 'Error: need RCPT command',
    when: 'DATA or BDAT with no RCPT command at all',
  },
  'data.no-valid-recipients': {
    code: 554, enhanced: '5.5.1', stage: 'data', text: 'No valid recipients',
    when: 'RCPT commands were given but every one was rejected',
  },
  'data.queued': {
    code: 250, enhanced: '2.0.0', stage: 'data', text: 'Ok: queued as {id}',
    when: 'only after the message and its envelope are durably stored',
  },
  'bdat.chunk-received': {
    code: 250, enhanced: '2.0.0', stage: 'data', text: '{size} octets received',
    when: 'a BDAT chunk that is not the LAST one was received (RFC 3030)',
  },
  'data.size-exceeded': {
    code: 552, enhanced: '5.3.4', stage: 'data', text: 'Message size exceeds fixed maximum message size',
    when: 'the message grew beyond the maximum size (answered after end of data; past twice the limit the connection is closed)',
  },
  'data.header-too-big': {
    code: 552, enhanced: '5.3.4', stage: 'data', text: 'Message header exceeds the limit of {limit}',
    when: 'the header has more than the configured number of lines (default 1,000) or bytes',
  },
  'data.bare-line-ending': {
    code: 554, enhanced: '5.5.2', stage: 'data',
    text: 'Message rejected: bare CR or LF found; lines must end with CRLF',
    when: 'the data contains a bare LF or bare CR outside CRLF (SMTP smuggling protection; RFC 5321 §2.3.8)',
  },
  'data.spf-fail': {
    code: 550, enhanced: '5.7.23', stage: 'data', text: 'SPF validation failed',
    when: 'SPF result fail and the policy rejects it (RFC 7372)',
  },
  'data.spf-temperror': {
    code: 451, enhanced: '4.7.24', stage: 'data', text: 'SPF validation error, try again later',
    when: 'SPF temperror and the policy defers (RFC 7372)',
  },
  'data.content-rejected': {
    code: 554, enhanced: '5.7.1', stage: 'data', text: 'Message rejected by content policy',
    when: 'the message is rejected by a content policy (DMARC reject, content filter)',
  },
  'data.content-tempfail': {
    code: 451, enhanced: '4.7.1', stage: 'data', text: 'Content check could not complete, try again later',
    when: 'a content check could not complete (temporary DNS failure during DKIM/DMARC) and the policy defers',
  },

  // ── Other commands ────────────────────────────────────────────────────────────────────────
  'help.status': {
    code: 211, enhanced: '2.0.0', stage: 'other', text: '{status}',
    when: 'HELP STATUS: system status',
  },
  'help.commands': {
    code: 214, enhanced: '2.0.0', stage: 'other', text: '{help}',
    when: 'HELP: the supported commands; HELP <command>: its syntax',
  },
  'help.unknown-topic': {
    code: 504, enhanced: '5.5.4', stage: 'other', text: 'HELP topic "{topic}" unknown',
    when: 'HELP <topic> for an unknown topic',
  },
  'noop.ok': {
    code: 250, enhanced: '2.0.0', stage: 'other', text: 'Ok', when: 'NOOP',
  },
  'rset.ok': {
    code: 250, enhanced: '2.0.0', stage: 'other', text: 'Ok', when: 'RSET: the transaction ends, the session stays',
  },
  'vrfy.cannot-verify': {
    code: 252, enhanced: '2.5.0', stage: 'other',
    text: 'Cannot VRFY user, but will accept message and attempt delivery',
    when: 'VRFY (RFC 5321 §3.5.3)',
  },
  'command.not-implemented': {
    code: 502, enhanced: '5.5.1', stage: 'other', text: 'Error: command not implemented',
    when: 'recognised but not implemented: EXPN, TURN, SEND, SOML, SAML, ETRN, ATRN; VRFY where disabled',
  },
  'command.unrecognized': {
    code: 500, enhanced: '5.5.2', stage: 'other', text: 'Error: command not recognized',
    when: 'unrecognised command, or a command with NUL or non-ASCII bytes',
  },
  'command.line-too-long': {
    code: 500, enhanced: '5.5.6', stage: 'other', text: 'Error: line too long',
    when: 'command line longer than 512 octets (RFC 5321 §4.5.3.1.4)',
  },
  'command.syntax': {
    code: 501, enhanced: '5.5.4', stage: 'other', text: 'Syntax: {syntax}',
    when: 'syntax error in the parameters of any command',
  },
  quit: {
    code: 221, enhanced: '2.0.0', stage: 'other', text: '{hostname} closing connection',
    when: 'QUIT: then the server closes the connection',
  },

  // ── TLS and AUTH (RFC 3207, RFC 4954) ───────────────────────────────────────────────────────
  'starttls.ready': {
    code: 220, enhanced: '2.0.0', stage: 'tls-auth', text: 'Ready to start TLS',
    when: 'STARTTLS accepted (RFC 3207)',
  },
  'tls.unavailable': {
    code: 454, enhanced: '4.7.0', stage: 'tls-auth', text: 'TLS not available due to temporary reason',
    when: 'TLS cannot start now (RFC 3207)',
  },
  'tls.required': {
    code: 530, enhanced: '5.7.0', stage: 'tls-auth', text: 'Must issue a STARTTLS command first',
    when: 'the policy requires TLS and the client has not started it',
  },
  'auth.ok': {
    code: 235, enhanced: '2.7.0', stage: 'tls-auth', text: 'Authentication successful',
    when: 'AUTH succeeded (RFC 4954)',
  },
  'auth.mechanism-too-weak': {
    code: 534, enhanced: '5.7.9', stage: 'tls-auth', text: 'Authentication mechanism is too weak',
    when: 'the mechanism is too weak for this listener (RFC 4954)',
  },
  'auth.invalid-credentials': {
    code: 535, enhanced: '5.7.8', stage: 'tls-auth', text: 'Authentication credentials invalid',
    when: 'the credentials are invalid (RFC 4954)',
  },
  'auth.encryption-required': {
    code: 538, enhanced: '5.7.11', stage: 'tls-auth',
    text: 'Encryption required for requested authentication mechanism',
    when: 'AUTH over a plaintext channel where the listener requires TLS for it (RFC 4954)',
  },
  'auth.mechanism-unknown': {
    code: 504, enhanced: '5.5.4', stage: 'tls-auth', text: 'Unrecognized authentication type',
    when: 'AUTH with a mechanism not offered (RFC 4954)',
  },
  'sequence.tls-active': {
    code: 503, enhanced: '5.5.1', stage: 'tls-auth', text: 'Error: TLS already active',
    when: 'STARTTLS when TLS is already active (RFC 3207 §4.2)',
  },
  'auth.challenge': {
    code: 334, enhanced: null, stage: 'tls-auth', text: '{challenge}',
    when: 'a SASL challenge during AUTH (RFC 4954 §4), base64',
  },
  'auth.cancelled': {
    code: 501, enhanced: '5.7.0', stage: 'tls-auth', text: 'Authentication cancelled',
    when: 'the client answered a challenge with "*" (RFC 4954 §4)',
  },
  'auth.bad-base64': {
    code: 501, enhanced: '5.5.2', stage: 'tls-auth', text: 'Cannot decode the authentication response',
    when: 'an AUTH response that is not valid base64 (RFC 4954 §4)',
  },
  'auth.already-authenticated': {
    code: 503, enhanced: '5.5.1', stage: 'tls-auth', text: 'Error: already authenticated',
    when: 'AUTH after a successful AUTH, or during a mail transaction (RFC 4954 §4)',
  },
  'auth.temporary-failure': {
    code: 454, enhanced: '4.7.0', stage: 'tls-auth', text: 'Temporary authentication failure',
    when: 'the credentials could not be checked now (user directory unavailable; RFC 4954 §6)',
  },
  'auth.too-many-failures': {
    code: 421, enhanced: '4.7.0', stage: 'tls-auth',
    text: '{hostname} Too many failed authentication attempts, closing transmission channel',
    when: 'repeated AUTH failures from one client; then close',
  },
  'auth.in-transaction': {
    code: 503, enhanced: '5.5.1', stage: 'tls-auth', text: 'Error: AUTH is not permitted during a mail transaction',
    when: 'AUTH between MAIL and the end of the transaction (RFC 4954 §4)',
  },
  'auth.sender-mismatch': {
    code: 553, enhanced: '5.7.1', stage: 'tls-auth', text: 'Sender address rejected: not owned by user {user}',
    when: 'an authenticated client uses a sender address that does not belong to it',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ReplyId = keyof typeof entries;

export const REPLY_CATALOGUE: Readonly<Record<ReplyId, CatalogueEntry>> = entries;

export const REPLY_IDS = Object.keys(entries) as ReplyId[];

export type ReplyClass = 'ok' | 'intermediate' | 'soft' | 'hard';

/** RFC 5321 §4.2.1: the first digit decides. */
export function replyClassOf(code: number): ReplyClass {
  if (code >= 500) return 'hard';
  if (code >= 400) return 'soft';
  if (code >= 300) return 'intermediate';
  return 'ok';
}
