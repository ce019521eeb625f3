/**
 * The EHLO keywords a session offers (RFC 5321 §4.1.1.1), from its limits and state.
 * STARTTLS only before TLS (RFC 3207 §4.2); AUTH only where the listener allows it (RFC 4954 §3).
 */
export interface CapabilityFacts {
  readonly maxMessageSize: number;
  readonly tlsAvailable: boolean;
  readonly tlsActive: boolean;
  /** SASL mechanisms offered now, or empty for no AUTH. */
  readonly authMechanisms: readonly string[];
}

export function ehloKeywords(f: CapabilityFacts): string[] {
  const kw = [
    'PIPELINING', // RFC 2920
    `SIZE ${f.maxMessageSize}`, // RFC 1870
    '8BITMIME', // RFC 6152
    'SMTPUTF8', // RFC 6531
    'ENHANCEDSTATUSCODES', // RFC 2034
    'DSN', // RFC 3461
    'CHUNKING', // RFC 3030
    'HELP',
  ];
  if (f.tlsAvailable && !f.tlsActive) kw.push('STARTTLS');
  if (f.authMechanisms.length > 0) kw.push(`AUTH ${f.authMechanisms.join(' ')}`);
  return kw;
}
