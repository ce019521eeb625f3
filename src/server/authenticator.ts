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
}
