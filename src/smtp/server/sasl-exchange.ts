/**
 * The server side of the SASL exchanges SMTP AUTH offers (RFC 4954): PLAIN (RFC 4616) and
 * LOGIN (the widely deployed draft-murchison-sasl-login). Pure: responses in, the next
 * challenge or the credentials out.
 */

export type SaslMechanism = 'PLAIN' | 'LOGIN';

export const SASL_MECHANISMS: readonly SaslMechanism[] = ['PLAIN', 'LOGIN'];

export interface SaslCredentials {
  /** RFC 4616 authzid; empty when not given. */
  readonly authzid: string;
  readonly username: string;
  readonly password: string;
}

export type SaslStep =
  /** Send `334 <challenge>` (already base64) and wait for the next response line. */
  | { readonly kind: 'challenge'; readonly challenge: string }
  | { readonly kind: 'done'; readonly credentials: SaslCredentials }
  /** The client sent "*" (RFC 4954 §4). */
  | { readonly kind: 'cancelled' }
  /** Not base64, or not a well-formed message for the mechanism. */
  | { readonly kind: 'malformed' };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const USERNAME_CHALLENGE = Buffer.from('Username:').toString('base64');
const PASSWORD_CHALLENGE = Buffer.from('Password:').toString('base64');

/** Strict base64 (RFC 4648 §4) to UTF-8; null when malformed. "=" alone is the empty response (RFC 4954 §4). */
export function decodeSaslResponse(line: string): string | null {
  if (line === '=') return '';
  if (!BASE64.test(line)) return null;
  const text = Buffer.from(line, 'base64').toString('utf8');
  return text.includes('\uFFFD') ? null : text;
}

export class SaslExchange {
  private username: string | null = null;

  constructor(readonly mechanism: SaslMechanism) {}

  /** The first step, given the AUTH command's initial response (null when none). */
  start(initialResponse: string | null): SaslStep {
    if (initialResponse === null) {
      return { kind: 'challenge', challenge: this.mechanism === 'PLAIN' ? '' : USERNAME_CHALLENGE };
    }
    return this.respond(initialResponse);
  }

  /** One response line from the client. */
  respond(line: string): SaslStep {
    if (line === '*') return { kind: 'cancelled' };
    const text = decodeSaslResponse(line);
    if (text === null) return { kind: 'malformed' };
    if (this.mechanism === 'PLAIN') {
      // RFC 4616 §2: [authzid] NUL authcid NUL passwd
      const parts = text.split('\0');
      if (parts.length !== 3 || parts[1] === '') return { kind: 'malformed' };
      return { kind: 'done', credentials: { authzid: parts[0], username: parts[1], password: parts[2] } };
    }
    if (this.username === null) {
      if (text === '') return { kind: 'malformed' };
      this.username = text;
      return { kind: 'challenge', challenge: PASSWORD_CHALLENGE };
    }
    return { kind: 'done', credentials: { authzid: '', username: this.username, password: text } };
  }
}
