/**
 * What a ClientSession tells its adapter, and the vocabulary of client-side failures.
 * Every reply is reported with the command it answers (KumoMTA's `Response.command`), and every
 * failure names the command that was waiting, so a bounce can say exactly what went wrong where.
 */
import type { MailParams, RcptParams } from '../esmtp-params.js';
import type { Mailbox } from '../mailbox.js';
import type { ServerReply } from '../reply-parser.js';
import type { EhloExtensions } from './ehlo-extensions.js';

/** The commands a client session sends, and the greeting it waits for first. */
export type ClientCommand =
  | 'CONNECT'
  | 'EHLO'
  | 'HELO'
  | 'LHLO'
  | 'STARTTLS'
  | 'MAIL'
  | 'RCPT'
  | 'DATA'
  | 'END-OF-DATA'
  | 'RSET'
  | 'QUIT';

/** Which RFC 5321 §4.5.3.2 timeout applies while the session waits for `command`'s reply. */
export type ClientTimeoutKind =
  | 'greeting' // §4.5.3.2.1 initial 220: 5 minutes
  | 'helo' // EHLO/HELO/LHLO (not in the RFC; Postfix: 5 minutes)
  | 'starttls'
  | 'mail' // §4.5.3.2.2: 5 minutes
  | 'rcpt' // §4.5.3.2.3: 5 minutes
  | 'data-init' // §4.5.3.2.4: 2 minutes
  | 'data-block' // §4.5.3.2.5: 3 minutes per block sent
  | 'data-term' // §4.5.3.2.6: 10 minutes
  | 'rset'
  | 'quit';

export const TIMEOUT_KIND_OF: Readonly<Record<ClientCommand, ClientTimeoutKind>> = {
  CONNECT: 'greeting',
  EHLO: 'helo',
  HELO: 'helo',
  LHLO: 'helo',
  STARTTLS: 'starttls',
  MAIL: 'mail',
  RCPT: 'rcpt',
  DATA: 'data-init',
  'END-OF-DATA': 'data-term',
  RSET: 'rset',
  QUIT: 'quit',
};

/** Why a session ended before its work was done. */
export type SessionFailure =
  /** The server refused: a non-2xx greeting, EHLO and HELO rejected, any 421, a refused STARTTLS that was required. */
  | { readonly kind: 'reply'; readonly command: ClientCommand; readonly reply: ServerReply }
  /** The route requires TLS and the server does not offer STARTTLS. */
  | { readonly kind: 'tls-not-offered' }
  /** The TLS handshake failed (reported by the adapter). */
  | { readonly kind: 'tls-failed'; readonly detail: string }
  /** No reply within the command's timeout (reported by the adapter). */
  | { readonly kind: 'timeout'; readonly command: ClientCommand; readonly timeout: ClientTimeoutKind }
  /** The connection closed or broke while `command` waited for its reply. */
  | { readonly kind: 'connection-lost'; readonly command: ClientCommand | null; readonly detail: string }
  /** The server sent something that is not an SMTP reply, or a reply nothing asked for. */
  | { readonly kind: 'protocol'; readonly command: ClientCommand | null; readonly detail: string };

export interface TransactionRecipientRequest {
  readonly mailbox: Mailbox;
  /** NOTIFY and ORCPT; passed on only when the server offers DSN (RFC 3461 §5.2). */
  readonly params: RcptParams;
}

export interface TransactionRequest {
  readonly reversePath: Mailbox | null;
  /**
   * SIZE is sent when offered (and checked against the server's maximum), BODY=8BITMIME when the
   * message is 8-bit, SMTPUTF8 when the message needs it, RET/ENVID when DSN is offered.
   */
  readonly params: MailParams;
  readonly recipients: readonly TransactionRecipientRequest[];
}

/** Why the client would not even start a transaction with this server (RFC-mandated refusals). */
export type TransactionRefusal =
  /** RFC 6531 §3.2: the message needs SMTPUTF8 and the server does not offer it. */
  | { readonly kind: 'smtputf8-not-offered' }
  /** RFC 6152 §3: an 8-bit message and a server without 8BITMIME. */
  | { readonly kind: '8bitmime-not-offered' }
  /** RFC 1870 §6: the message is larger than the server's fixed maximum. */
  | { readonly kind: 'size-exceeded'; readonly size: number; readonly limit: number };

/** Per-recipient results of one transaction (collected by rcpt-outcomes.ts). */
export type DecisiveFact =
  | { readonly kind: 'reply'; readonly command: ClientCommand; readonly reply: ServerReply }
  | { readonly kind: 'failure'; readonly failure: SessionFailure }
  | { readonly kind: 'refusal'; readonly refusal: TransactionRefusal };

export interface RecipientOutcome {
  /** Position in the transaction request. */
  readonly index: number;
  /** The reply to this recipient's RCPT, when one came. */
  readonly rcpt: ServerReply | null;
  readonly result: DecisiveFact;
}

export interface TransactionOutcome {
  /** The reply to MAIL, when one came. */
  readonly mail: ServerReply | null;
  readonly recipients: readonly RecipientOutcome[];
  /** The server offered DSN, so NOTIFY/ORCPT/RET/ENVID went with the commands (RFC 3461 §5.2). */
  readonly dsnPassedOn: boolean;
}

export type ClientEvent =
  /** A reply, with the command it answers (for logs and tracking); no action needed. */
  | { readonly type: 'reply'; readonly command: ClientCommand; readonly reply: ServerReply }
  /** STARTTLS was accepted: upgrade the socket now, then call `tlsEstablished()` or `tlsFailed()`. */
  | { readonly type: 'start-tls' }
  /** The session is established: transactions may start. Comes again after each transaction. */
  | { readonly type: 'ready'; readonly extensions: EhloExtensions; readonly tls: boolean }
  /** The server said 354: send the body with `sendBody()`, then `endBody()`. */
  | { readonly type: 'send-body' }
  /** A transaction finished: per-recipient replies (or the failure that cut it short). */
  | { readonly type: 'transaction-done'; readonly outcome: TransactionOutcome }
  /** The session cannot go on; a `closed` event follows. */
  | { readonly type: 'session-failed'; readonly failure: SessionFailure }
  /** Nothing more will happen: close the socket (after writing what `dataToSend()` holds). */
  | { readonly type: 'closed' };

export const NEED_DATA = Symbol('CLIENT_NEED_DATA');
export type ClientNextEvent = ClientEvent | typeof NEED_DATA;
