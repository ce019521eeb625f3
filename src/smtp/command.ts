/**
 * SMTP commands, parsed and encoded by one grammar (RFC 5321 §4.1.1, §4.1.2; RFC 6531 SMTPUTF8;
 * RFC 1870 SIZE; RFC 6152 8BITMIME; RFC 3461 DSN; RFC 3030 BDAT; RFC 4954 AUTH; RFC 3207 STARTTLS).
 * The server session parses with `parseCommand`, the client session writes with `encodeCommand`.
 *
 * How a bad line maps to a reply (ParseResult.error.replyId):
 *   unknown verb                                        → 'command.unrecognized', verb null
 *   NUL anywhere; a byte ≥ 0x80 outside MAIL/RCPT       → 'command.unrecognized' (verb set when known)
 *   HELO/EHLO without one Domain / address-literal      → 'helo.syntax' {verb}
 *   MAIL: no "FROM:", no brackets, junk after the path  → 'mail.syntax'
 *   MAIL: path fine, mailbox unacceptable / bad UTF-8   → 'mail.bad-sender'
 *   RCPT: the same                                      → 'rcpt.syntax' / 'rcpt.bad-recipient' (also for "<>")
 *   MAIL/RCPT parameters                                → see esmtp-params.ts ('param.*', 'mail.syntax', 'rcpt.syntax')
 *   any other argument error                            → 'command.syntax' {syntax}
 * Trailing SP/HTAB at the end of the line and repeated SP after the verb are tolerated.
 */
import { isAddressLiteral, isDomain } from './abnf.js';
import {
  encodeMailParams, encodeRcptParams, parseMailParams, parseRcptParams,
  type MailParams, type RcptParams,
} from './esmtp-params.js';
import { formatPath, parseForwardPath, parsePath, type Mailbox } from './mailbox.js';
import type { ReplyId } from './reply-catalogue.js';
import type { ReplyVars } from './reply.js';

export type Command =
  | { readonly verb: 'HELO' | 'EHLO'; readonly domain: string }
  | { readonly verb: 'MAIL'; readonly reversePath: Mailbox | null; readonly params: MailParams }
  | { readonly verb: 'RCPT'; readonly forwardPath: Mailbox; readonly params: RcptParams }
  | { readonly verb: 'DATA' | 'RSET' | 'NOOP' | 'QUIT' | 'STARTTLS' }
  | { readonly verb: 'BDAT'; readonly size: number; readonly last: boolean }
  | { readonly verb: 'HELP'; readonly topic: string | null }
  | { readonly verb: 'VRFY' | 'EXPN'; readonly argument: string }
  | { readonly verb: 'AUTH'; readonly mechanism: string; readonly initialResponse: string | null }
  | { readonly verb: 'TURN' | 'SEND' | 'SOML' | 'SAML' | 'ETRN' | 'ATRN'; readonly argument: string };

export type Verb = Command['verb'];

export interface CommandError {
  readonly replyId: ReplyId;
  readonly vars?: ReplyVars;
}

export type ParseResult =
  | { readonly ok: true; readonly command: Command }
  | { readonly ok: false; readonly verb: string | null; readonly error: CommandError };

/** Every verb the grammar knows, upper case. */
export const VERBS: readonly Verb[] = [
  'HELO', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT', 'STARTTLS', 'BDAT', 'HELP',
  'VRFY', 'EXPN', 'AUTH', 'TURN', 'SEND', 'SOML', 'SAML', 'ETRN', 'ATRN',
];

/** The syntax shown in 'command.syntax' replies. */
const SYNTAX_HINT: Readonly<Record<string, string>> = {
  BDAT: 'BDAT size [LAST]',
  HELP: 'HELP [topic]',
  VRFY: 'VRFY address',
  EXPN: 'EXPN mailing-list',
  AUTH: 'AUTH mechanism [initial-response]',
};

function fail(verb: string | null, replyId: ReplyId, vars?: ReplyVars): ParseResult {
  return { ok: false, verb, error: vars === undefined ? { replyId } : { replyId, vars } };
}

function ok(command: Command): ParseResult {
  return { ok: true, command };
}

function syntax(verb: Verb): ParseResult {
  return fail(verb, 'command.syntax', { syntax: SYNTAX_HINT[verb] ?? verb });
}

// ── Argument grammars ───────────────────────────────────────────────────────────────────────────

/** C0 controls but HTAB, and DEL: never part of a free-form argument. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * RFC 5321 §4.1.1.1: `ehlo = "EHLO" SP ( Domain / address-literal ) CRLF`,
 * `helo = "HELO" SP Domain CRLF` (an address literal is accepted for HELO too, as every MTA does).
 */
function parseHelo(verb: 'HELO' | 'EHLO', arg: string): ParseResult {
  const good = arg.charCodeAt(0) === 0x5b ? isAddressLiteral(arg) && arg.length <= 255 : isDomain(arg, false);
  return good ? ok({ verb, domain: arg }) : fail(verb, 'helo.syntax', { verb });
}

const FROM = /^FROM:/i;
const TO = /^TO:/i;

/**
 * RFC 5321 §4.1.1.2: `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF`.
 * One SP after the colon is tolerated ("MAIL FROM: <a@b>"), as Postfix and most servers do.
 */
function parseMail(arg: string): ParseResult {
  if (!FROM.test(arg)) return fail('MAIL', 'mail.syntax');
  const path = parsePath(arg.slice(arg.charCodeAt(5) === 0x20 ? 6 : 5));
  if (!path.ok) return fail('MAIL', path.kind === 'syntax' ? 'mail.syntax' : 'mail.bad-sender');
  if (path.rest !== '' && path.rest.charCodeAt(0) !== 0x20) return fail('MAIL', 'mail.syntax');
  const params = parseMailParams(path.rest);
  if (!params.ok) return { ok: false, verb: 'MAIL', error: params.error };
  return ok({ verb: 'MAIL', reversePath: path.mailbox, params: params.params });
}

/**
 * RFC 5321 §4.1.1.3: `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
 * Forward-path ) [SP Rcpt-parameters] CRLF`. The null path is no recipient (553).
 */
function parseRcpt(arg: string): ParseResult {
  if (!TO.test(arg)) return fail('RCPT', 'rcpt.syntax');
  const path = parseForwardPath(arg.slice(arg.charCodeAt(3) === 0x20 ? 4 : 3));
  if (!path.ok) return fail('RCPT', path.kind === 'syntax' ? 'rcpt.syntax' : 'rcpt.bad-recipient');
  if (path.rest !== '' && path.rest.charCodeAt(0) !== 0x20) return fail('RCPT', 'rcpt.syntax');
  const params = parseRcptParams(path.rest);
  if (!params.ok) return { ok: false, verb: 'RCPT', error: params.error };
  return ok({ verb: 'RCPT', forwardPath: path.mailbox, params: params.params });
}

/** RFC 3030 §3: `bdat-cmd ::= "BDAT" SP chunk-size [ SP end-marker ] CR LF`, chunk-size ::= 1*DIGIT. */
const BDAT_ARGS = /^(\d{1,15})(?: +(LAST))?$/i;

function parseBdat(arg: string): ParseResult {
  const m = BDAT_ARGS.exec(arg);
  if (m === null) return syntax('BDAT');
  return ok({ verb: 'BDAT', size: Number(m[1]), last: m[2] !== undefined });
}

/**
 * RFC 4954 §4: `"AUTH" SP sasl-mech [SP initial-response]`, sasl-mech = 1*20(ALPHA / DIGIT /
 * "-" / "_") (upper-cased here), initial-response = base64 / "=" (RFC 4648 base64, padded).
 */
const AUTH_ARGS = /^([A-Za-z0-9_-]{1,20})(?: +(\S+))?$/;
const INITIAL_RESPONSE = /^(?:=|(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==))$/;

function parseAuth(arg: string): ParseResult {
  const m = AUTH_ARGS.exec(arg);
  if (m === null) return syntax('AUTH');
  // RFC 4954 §4: a response that is not base64 is answered 501 (5.5.2: cannot decode).
  if (m[2] !== undefined && !INITIAL_RESPONSE.test(m[2])) return fail('AUTH', 'auth.bad-base64');
  return ok({ verb: 'AUTH', mechanism: m[1].toUpperCase(), initialResponse: m[2] ?? null });
}

type ArgParser = (arg: string) => ParseResult;

function noArgument(verb: 'DATA' | 'RSET' | 'QUIT' | 'STARTTLS'): ArgParser {
  const command: Command = { verb };
  return (arg) => (arg === '' ? ok(command) : syntax(verb));
}

function withArgument(verb: 'VRFY' | 'EXPN'): ArgParser {
  return (arg) => (arg === '' || CONTROL.test(arg) ? syntax(verb) : ok({ verb, argument: arg }));
}

function optionalArgument(verb: 'TURN' | 'SEND' | 'SOML' | 'SAML' | 'ETRN' | 'ATRN'): ArgParser {
  return (arg) => (CONTROL.test(arg) ? syntax(verb) : ok({ verb, argument: arg }));
}

const NOOP: Command = { verb: 'NOOP' };

const PARSERS: ReadonlyMap<string, ArgParser> = new Map<string, ArgParser>([
  ['HELO', (arg) => parseHelo('HELO', arg)],
  ['EHLO', (arg) => parseHelo('EHLO', arg)],
  ['MAIL', parseMail],
  ['RCPT', parseRcpt],
  ['DATA', noArgument('DATA')],
  ['RSET', noArgument('RSET')],
  ['QUIT', noArgument('QUIT')],
  ['STARTTLS', noArgument('STARTTLS')],
  // RFC 5321 §4.1.1.9: NOOP may have a String argument, which is ignored.
  ['NOOP', () => ok(NOOP)],
  ['BDAT', parseBdat],
  // RFC 5321 §4.1.1.8: `help = "HELP" [ SP String ] CRLF`.
  ['HELP', (arg) => (CONTROL.test(arg) ? syntax('HELP') : ok({ verb: 'HELP', topic: arg === '' ? null : arg }))],
  // RFC 5321 §4.1.1.6, §4.1.1.7: `vrfy = "VRFY" SP String CRLF`, `expn = "EXPN" SP String CRLF`.
  ['VRFY', withArgument('VRFY')],
  ['EXPN', withArgument('EXPN')],
  ['AUTH', parseAuth],
  ['TURN', optionalArgument('TURN')],
  ['SEND', optionalArgument('SEND')],
  ['SOML', optionalArgument('SOML')],
  ['SAML', optionalArgument('SAML')],
  ['ETRN', optionalArgument('ETRN')],
  ['ATRN', optionalArgument('ATRN')],
]);

// ── The line ────────────────────────────────────────────────────────────────────────────────────

/** Invalid UTF-8 becomes U+FFFD, which no path or parameter grammar accepts. */
const utf8 = new TextDecoder('utf-8');

/** The known verb spelled by line[0..len), upper-cased (RFC 5321 §2.4: verbs are case-insensitive), or null. */
function verbOf(line: Uint8Array, len: number): string | null {
  if (len < 4 || len > 8) return null;
  let v = '';
  for (let i = 0; i < len; i++) {
    const b = line[i] & 0xdf; // ASCII letters to upper case; anything else fails the check below
    if (b < 0x41 || b > 0x5a || (line[i] & 0x80) !== 0) return null;
    v += String.fromCharCode(b);
  }
  return PARSERS.has(v) ? v : null;
}

/**
 * Parses one command line, without its CRLF (the session guarantees at most 510 octets,
 * RFC 5321 §4.5.3.1.4). Never throws.
 */
export function parseCommand(line: Uint8Array): ParseResult {
  let end = line.length;
  while (end > 0 && (line[end - 1] === 0x20 || line[end - 1] === 0x09)) end--;
  let verbEnd = 0;
  while (verbEnd < end && line[verbEnd] !== 0x20) verbEnd++;
  const verb = verbOf(line, verbEnd);
  if (verb === null) return fail(null, 'command.unrecognized');
  let nonAscii = false;
  for (let i = verbEnd; i < line.length; i++) {
    const b = line[i];
    if (b === 0) return fail(verb, 'command.unrecognized');
    if (b >= 0x80) nonAscii = true;
  }
  // RFC 6531 §3.3: only the paths and parameters of MAIL and RCPT may carry UTF-8.
  if (nonAscii && verb !== 'MAIL' && verb !== 'RCPT') return fail(verb, 'command.unrecognized');
  let argStart = verbEnd;
  while (argStart < end && line[argStart] === 0x20) argStart++;
  const arg = argStart < end ? utf8.decode(line.subarray(argStart, end)) : '';
  return (PARSERS.get(verb) as ArgParser)(arg);
}

// ── Encoding ────────────────────────────────────────────────────────────────────────────────────

const LINE_BREAK_OR_NUL = /[\r\n\0]/;

function withArg(verb: string, arg: string): string {
  return arg === '' ? verb : `${verb} ${arg}`;
}

/**
 * The command line as the client writes it, without CRLF. `parseCommand` of the result gives the
 * same command back. Throws RangeError when a field contains CR, LF or NUL (it could smuggle a
 * second command onto the wire).
 */
export function encodeCommand(cmd: Command): string {
  let line: string;
  switch (cmd.verb) {
    case 'HELO':
    case 'EHLO':
      line = `${cmd.verb} ${cmd.domain}`;
      break;
    case 'MAIL':
      line = withArg(`MAIL FROM:${formatPath(cmd.reversePath)}`, encodeMailParams(cmd.params));
      break;
    case 'RCPT':
      line = withArg(`RCPT TO:${formatPath(cmd.forwardPath)}`, encodeRcptParams(cmd.params));
      break;
    case 'BDAT':
      line = `BDAT ${cmd.size}${cmd.last ? ' LAST' : ''}`;
      break;
    case 'HELP':
      line = withArg('HELP', cmd.topic ?? '');
      break;
    case 'AUTH':
      line = withArg(`AUTH ${cmd.mechanism}`, cmd.initialResponse ?? '');
      break;
    case 'VRFY':
    case 'EXPN':
    case 'TURN':
    case 'SEND':
    case 'SOML':
    case 'SAML':
    case 'ETRN':
    case 'ATRN':
      line = withArg(cmd.verb, cmd.argument);
      break;
    default:
      line = cmd.verb;
  }
  if (LINE_BREAK_OR_NUL.test(line)) throw new RangeError(`${cmd.verb}: CR, LF or NUL in a command field`);
  return line;
}
