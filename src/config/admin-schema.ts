/**
 * `admin:` — the HTTP admin API, web dashboard and /metrics. Off unless a token is set: an API
 * without one would be open to anybody who can reach the port, so there is none.
 *
 *   admin: { listen: 127.0.0.1:8025, token: "a long random string" }
 */
import { z } from 'zod';
import { listenAddressSchema } from './listen-address.js';
import { positiveDurationSchema } from './units.js';

export const adminSchema = z.strictObject({
  /** Loopback by default; put a TLS-terminating proxy in front before exposing it further. */
  listen: listenAddressSchema.prefault('127.0.0.1:8025'),
  /** Bearer token every API request must carry (Authorization: Bearer …). Absent: the API is off. */
  token: z.string().min(16, { error: 'must be at least 16 characters (use a long random string)' }).optional(),
  /** Serve /metrics without the token (for a Prometheus on the same host). */
  metrics_public: z.boolean().default(false),
  /** Tracking events and finished messages are kept this long, then pruned. */
  retention: positiveDurationSchema.prefault('30d'),
});

export type AdminConfig = z.output<typeof adminSchema>;

export const ADMIN_DEFAULT_YAML = `\
admin:                               # HTTP admin API, web dashboard and /metrics; off without a token
  listen: 127.0.0.1:8025             # loopback by default
# token: "..."                       # bearer token, at least 16 characters; absent = API off
  metrics_public: false              # true: /metrics without the token
  retention: 30d                     # tracking events and finished messages are kept this long
`;
