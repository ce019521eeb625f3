/** The knobs of one server session. Defaults follow RFC 5321 minimums and the seed's gateway. */
export interface SessionLimits {
  /** RFC 5321 §4.5.3.1.4: 512 octets including CRLF. */
  readonly maxLineLength: number;
  readonly maxMessageSize: number;
  /** Per message; RFC 5321 §4.5.3.1.8 says at least 100. */
  readonly maxRecipients: number;
  /** Bad commands before 421 4.7.0 (the seed's gateway closes after 4). */
  readonly maxErrors: number;
  /** NOOP/RSET/VRFY/HELP/HELO… since the last accepted message, before 421 4.7.0. */
  readonly maxCommandsWithoutTransaction: number;
  readonly maxMessagesPerConnection: number;
  readonly maxHeaderLines: number;
  readonly maxHeaderBytes: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxLineLength: 512,
  maxMessageSize: 100 * 1024 * 1024,
  maxRecipients: 1000,
  maxErrors: 4,
  maxCommandsWithoutTransaction: 100,
  maxMessagesPerConnection: 1000,
  maxHeaderLines: 1000,
  maxHeaderBytes: 1024 * 1024,
};
