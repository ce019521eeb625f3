/**
 * What SMTP AUTH (RFC 4954) needs from the user directory: check a username and password.
 * The gateway plugs in the users file (scrypt hashes); the server never sees how.
 */
export type AuthResult =
  | { readonly kind: 'ok'; readonly user: string }
  | { readonly kind: 'invalid' }
  /** The directory could not be asked now: 454 4.7.0 (RFC 4954 §6). */
  | { readonly kind: 'temporary' };

export interface Authenticator {
  verify(username: string, password: string): Promise<AuthResult>;
  /**
   * Whether `address` (local@domain, local part unquoted) belongs to `user` (the `user` of an
   * `ok` verify): its own address or one of its aliases. Checked at MAIL on listeners with
   * `sender_login_match` (the default): false → 553 5.7.1. May throw when the directory cannot
   * answer now (→ 451 4.3.0). Absent: only the user's own name matches (see `sameAddress`).
   */
  ownsAddress?(user: string, address: string): boolean | Promise<boolean>;
}

/**
 * The fallback ownership test: `address` is `user` itself, domains compared in any case and
 * local parts too (as Postern compares addresses elsewhere).
 */
export function sameAddress(user: string, address: string): boolean {
  const norm = (a: string): string => a.trim().replace(/^<|>$/g, '').replace(/\.$/, '').toLowerCase();
  return norm(user) === norm(address);
}
