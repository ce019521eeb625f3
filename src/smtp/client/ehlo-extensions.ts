/**
 * The service extensions a server offers in its EHLO (or LHLO) reply (RFC 5321 §4.1.1.1: the
 * first line greets, each further line is `ehlo-keyword *( SP ehlo-param )`), as the client
 * needs them. Keywords are case-insensitive; unknown ones are kept in `keywords`.
 */
import type { ServerReply } from '../reply-parser.js';

export interface EhloExtensions {
  /** RFC 2920. */
  readonly pipelining: boolean;
  /** RFC 1870: the fixed maximum message size; 0 = no fixed maximum; null = SIZE not offered. */
  readonly size: number | null;
  /** RFC 6152. */
  readonly eightBitMime: boolean;
  /** RFC 6531. */
  readonly smtputf8: boolean;
  /** RFC 3461. */
  readonly dsn: boolean;
  /** RFC 3207. */
  readonly starttls: boolean;
  /** RFC 3030. */
  readonly chunking: boolean;
  /** RFC 2034. */
  readonly enhancedStatusCodes: boolean;
  /** RFC 4954: SASL mechanisms, upper case. */
  readonly auth: readonly string[];
  /** Every keyword, upper case, with its parameters. */
  readonly keywords: ReadonlyMap<string, string>;
}

/** What a server that answered HELO (no extensions, RFC 5321 §4.1.1.1) offers. */
export const NO_EXTENSIONS: EhloExtensions = Object.freeze({
  pipelining: false,
  size: null,
  eightBitMime: false,
  smtputf8: false,
  dsn: false,
  starttls: false,
  chunking: false,
  enhancedStatusCodes: false,
  auth: [],
  keywords: new Map<string, string>(),
});

const KEYWORD_LINE = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/;

/** Reads the extensions from a positive EHLO reply; lines that are no keyword are skipped. */
export function parseEhloExtensions(r: ServerReply): EhloExtensions {
  const keywords = new Map<string, string>();
  for (const line of r.lines.slice(1)) {
    const m = KEYWORD_LINE.exec(line.trim());
    if (m === null) continue;
    const keyword = m[1].toUpperCase();
    // The first line of a keyword counts ("AUTH=LOGIN" after "AUTH LOGIN" is an old alias).
    if (!keywords.has(keyword)) keywords.set(keyword, (m[2] ?? '').trim());
  }
  const sizeParam = keywords.get('SIZE');
  let size: number | null = null;
  if (sizeParam !== undefined) {
    // RFC 1870 §4: "SIZE" [SP number]; no number (or junk) means no announced maximum.
    size = /^\d{1,15}$/.test(sizeParam) ? Number(sizeParam) : 0;
  }
  const auth = keywords.get('AUTH');
  return {
    pipelining: keywords.has('PIPELINING'),
    size,
    eightBitMime: keywords.has('8BITMIME'),
    smtputf8: keywords.has('SMTPUTF8'),
    dsn: keywords.has('DSN'),
    starttls: keywords.has('STARTTLS'),
    chunking: keywords.has('CHUNKING'),
    enhancedStatusCodes: keywords.has('ENHANCEDSTATUSCODES'),
    auth: auth === undefined ? [] : auth.split(/\s+/).filter((a) => a !== '').map((a) => a.toUpperCase()),
    keywords,
  };
}
