/**
 * What a ServerSession tells its adapter. Events marked "decision" wait for `answer(verdict)`;
 * until then the session reports PAUSED and keeps later (pipelined) input unread.
 */
import type { Mailbox } from '../mailbox.js';
import type { MailParams, RcptParams } from '../esmtp-params.js';
import type { Reply } from '../reply.js';

export type ServerEvent =
  /** decision: accept → 220 greeting; reject → the reply (554: only QUIT after it; 421 closes); refuse → close silently. */
  | { readonly type: 'connect' }
  /** decision: accept → 250 (EHLO: with extensions). */
  | { readonly type: 'helo'; readonly verb: 'HELO' | 'EHLO'; readonly domain: string }
  /** decision: accept → 250 2.1.0. Syntax, sequence and size checks are done already. */
  | { readonly type: 'mail'; readonly reversePath: Mailbox | null; readonly params: MailParams }
  /** decision: accept → 250 2.1.5 (or the verdict's reply, e.g. 251). */
  | { readonly type: 'rcpt'; readonly forwardPath: Mailbox; readonly params: RcptParams }
  /** decision: accept → 354 (DATA) or chunk reading (BDAT): the adapter opens the body sink first. */
  | { readonly type: 'data-start'; readonly via: 'DATA' | 'BDAT' }
  /** Body bytes, dot-unstuffed. A slice of input: copy it if kept beyond the call. */
  | { readonly type: 'body'; readonly chunk: Buffer }
  /** decision: the whole message was received intact; accept with the "queued as" reply only after durable storage. */
  | { readonly type: 'message-end'; readonly size: number }
  /** The transaction's message was refused by the session itself (reply already sent) or abandoned. */
  | { readonly type: 'message-aborted'; readonly reason: MessageAbortReason }
  /** The transaction was reset (RSET, HELO/EHLO, or after a message); nothing is kept. */
  | { readonly type: 'transaction-reset' }
  /** decision: STARTTLS; accept → 220 2.0.0, then the adapter upgrades and calls `tlsEstablished()`; reject → e.g. 454 4.7.0. */
  | { readonly type: 'starttls' }
  /** decision: AUTH credentials; accept → 235 2.7.0; reject → 535 5.7.8 or 454 4.7.0. Never log the password. */
  | { readonly type: 'auth'; readonly mechanism: string; readonly username: string; readonly password: string; readonly authzid: string }
  /** The adapter must now run the TLS handshake on the socket; plaintext input was discarded. */
  | { readonly type: 'tls-upgrade' }
  /** decision: HELP STATUS; accept with a help.status reply carrying the status lines. */
  | { readonly type: 'status-request' }
  /** A reply the session produced on its own (for logging and metrics); no decision. */
  | { readonly type: 'replied'; readonly reply: Reply; readonly command: string | null }
  /** Flush what is pending, then close the connection. Nothing more will happen. */
  | { readonly type: 'close'; readonly reason: CloseReason };

export type MessageAbortReason =
  | 'bare-line-ending'
  | 'too-big'
  | 'header-too-big'
  | 'rejected'
  | 'closed';

export type CloseReason =
  | 'quit'
  | 'refused'
  | 'rejected'
  | 'too-many-errors'
  | 'too-many-commands'
  | 'max-messages'
  | 'idle-timeout'
  | 'time-cap'
  | 'shutdown'
  | 'too-big'
  | 'auth-failures'
  | 'policy';

export type Verdict =
  | { readonly kind: 'accept'; readonly reply?: Reply }
  | { readonly kind: 'reject'; readonly reply: Reply; readonly disconnect?: boolean }
  /** Connect only: close without a greeting (TCPREFUSE). */
  | { readonly kind: 'refuse' };

export const NEED_DATA = Symbol('NEED_DATA');
export const PAUSED = Symbol('PAUSED');
export type NextEvent = ServerEvent | typeof NEED_DATA | typeof PAUSED;
