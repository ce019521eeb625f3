/**
 * Per-verb metadata of the server side, as data (Postfix's smtpd command table): the syntax shown
 * by HELP, and whether the command counts against the limit of commands without a transaction.
 */
import type { Command } from '../command.js';

export type Verb = Command['verb'];

export interface CommandInfo {
  /** Shown by `HELP <verb>` (RFC 5321 §4.1.1.8). */
  readonly syntax: string;
  /** Counts towards maxCommandsWithoutTransaction (Postfix's "junk" commands). */
  readonly junk: boolean;
  /** Listed by plain HELP. */
  readonly listed: boolean;
}

export const COMMAND_TABLE: Readonly<Record<Verb, CommandInfo>> = {
  HELO: { syntax: 'HELO <hostname>', junk: true, listed: true },
  EHLO: { syntax: 'EHLO <hostname>', junk: true, listed: true },
  MAIL: {
    syntax: 'MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8] [RET=FULL|HDRS] [ENVID=id]',
    junk: false, listed: true,
  },
  RCPT: {
    syntax: 'RCPT TO:<address> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=rfc822;address]',
    junk: false, listed: true,
  },
  DATA: { syntax: 'DATA', junk: false, listed: true },
  BDAT: { syntax: 'BDAT <size> [LAST]', junk: false, listed: true },
  RSET: { syntax: 'RSET', junk: true, listed: true },
  NOOP: { syntax: 'NOOP', junk: true, listed: true },
  QUIT: { syntax: 'QUIT', junk: false, listed: true },
  HELP: { syntax: 'HELP [command | STATUS]', junk: true, listed: true },
  VRFY: { syntax: 'VRFY <address>', junk: true, listed: true },
  EXPN: { syntax: 'EXPN <list>', junk: true, listed: false },
  STARTTLS: { syntax: 'STARTTLS', junk: false, listed: false },
  AUTH: { syntax: 'AUTH <mechanism> [initial-response]', junk: false, listed: false },
  TURN: { syntax: 'TURN', junk: true, listed: false },
  SEND: { syntax: 'SEND FROM:<address>', junk: true, listed: false },
  SOML: { syntax: 'SOML FROM:<address>', junk: true, listed: false },
  SAML: { syntax: 'SAML FROM:<address>', junk: true, listed: false },
  ETRN: { syntax: 'ETRN <domain>', junk: true, listed: false },
  ATRN: { syntax: 'ATRN [domain]', junk: true, listed: false },
};

export function isVerb(s: string): s is Verb {
  return Object.prototype.hasOwnProperty.call(COMMAND_TABLE, s);
}
