/**
 * Enhanced mail system status codes (RFC 3463): class.subject.detail.
 * RFC 3463 §2: class is 2 (success), 4 (persistent transient failure) or 5 (permanent failure);
 * subject 0-999 and detail 0-999, written without leading zeros.
 */
export interface EnhancedStatus {
  readonly klass: 2 | 4 | 5;
  readonly subject: number;
  readonly detail: number;
}

const ENHANCED_RE = /^([245])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;

/** Parses "5.7.1"; returns null for anything that is not an RFC 3463 status code. */
export function parseEnhancedStatus(text: string): EnhancedStatus | null {
  const m = ENHANCED_RE.exec(text);
  if (!m) return null;
  return { klass: Number(m[1]) as 2 | 4 | 5, subject: Number(m[2]), detail: Number(m[3]) };
}

export function formatEnhancedStatus(s: EnhancedStatus): string {
  return `${s.klass}.${s.subject}.${s.detail}`;
}

export function isEnhancedStatus(text: string): boolean {
  return ENHANCED_RE.test(text);
}
