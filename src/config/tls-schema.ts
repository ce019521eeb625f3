/**
 * `tls:` — the server certificate and protocol settings for STARTTLS (RFC 3207) and implicit-TLS
 * listeners (RFC 8314), and `auth:` — SMTP AUTH limits (RFC 4954). Which listener offers what is
 * set per listener (`tls`, `require_tls`, `auth`, `auth_without_tls`).
 *
 *   tls: { cert: ./tls/cert.pem, key: ./tls/key.pem, min_version: TLSv1.2 }
 */
import { z } from 'zod';
import { positiveDurationSchema } from './units.js';

export const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

export const tlsSchema = z.strictObject({
  /** PEM certificate chain; relative to the config file's directory. Reloaded on SIGHUP. */
  cert: z.string().min(1).optional(),
  /** PEM private key; relative to the config file's directory. Reloaded on SIGHUP. */
  key: z.string().min(1).optional(),
  min_version: z.enum(TLS_VERSIONS).default('TLSv1.2'),
  /** OpenSSL cipher list for TLS 1.2 and below; absent = Node's default. */
  ciphers: z.string().min(1).optional(),
}).refine((t) => (t.cert === undefined) === (t.key === undefined), { error: 'cert and key go together', path: ['key'] });

export const authSchema = z.strictObject({
  /** Delay before a failed AUTH is answered, times the failures so far in the session. */
  failure_delay: positiveDurationSchema.default(1000).or(z.literal(0)),
  /** Failed AUTH attempts in one session before 421 4.7.0 and close. */
  max_failures: z.number().int().min(1).default(3),
  /**
   * Failed AUTH attempts from one client IP across sessions within `failure_window`; reaching it
   * answers 421 4.7.0 and closes, and further AUTH from that IP is refused unchecked until the
   * window has passed. The delay above grows with this count too.
   */
  max_failures_per_ip: z.number().int().min(1).default(10),
  /** How long a failed AUTH counts against its client IP. */
  failure_window: positiveDurationSchema.default(3_600_000),
});

export const LISTENER_TLS_MODES = ['none', 'starttls', 'implicit'] as const;
export const LISTENER_AUTH_MODES = ['none', 'optional', 'required'] as const;

export type TlsConfig = z.output<typeof tlsSchema>;
export type AuthConfig = z.output<typeof authSchema>;
