/**
 * `domains:` — which domains Postern is the final destination for (`local`), which it relays
 * for to a fixed next hop (`relay`, accepted from any client), and `dns:` — where lookups go.
 *
 *   domains:
 *     local: [example.test]
 *     relay:
 *       partner.test: "smtp://127.0.0.2:2526"
 *       other.test: { next_hop: "smtp://[::1]:25", tls: required }
 */
import { z } from 'zod';
import { durationSchema } from './units.js';

const DOMAIN = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const domainNameSchema = z
  .string()
  .regex(DOMAIN, { error: 'expected a domain name like example.test' })
  .transform((d) => d.toLowerCase());

/** A next hop: smtp://host[:port] or lmtp://host[:port]; host may be [IPv6]. */
const NEXT_HOP = /^(smtp|lmtp):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/;

export interface NextHop {
  readonly protocol: 'smtp' | 'lmtp';
  readonly host: string;
  /** null: the protocol's default (25 for SMTP, 24 for LMTP) or the delivery section's port. */
  readonly port: number | null;
  readonly tls: 'none' | 'opportunistic' | 'required';
  /** As written in the config, for logs and tracking. */
  readonly url: string;
}

export const TLS_MODES = ['none', 'opportunistic', 'required'] as const;

const nextHopUrlSchema = z.string().regex(NEXT_HOP, { error: 'expected a next hop like smtp://mx.partner.test:25 or lmtp://127.0.0.1:24' });

function toNextHop(url: string, tls: NextHop['tls']): NextHop {
  const m = NEXT_HOP.exec(url)!;
  const host = m[2].startsWith('[') ? m[2].slice(1, -1) : m[2].toLowerCase();
  return { protocol: m[1] as 'smtp' | 'lmtp', host, port: m[3] ? Number(m[3]) : null, tls, url };
}

export const nextHopSchema = z.union([
  nextHopUrlSchema.transform((url) => toNextHop(url, 'opportunistic')),
  z.strictObject({
    next_hop: nextHopUrlSchema,
    tls: z.enum(TLS_MODES).default('opportunistic'),
  }).transform((o) => toNextHop(o.next_hop, o.tls)),
]);

export const domainsSchema = z.strictObject({
  /** Postern is the final destination: recipients are validated and delivered to mailboxes. */
  local: z.array(domainNameSchema).default([]),
  /** Accepted from any client and delivered to the given next hop. */
  relay: z.record(domainNameSchema, nextHopSchema).default({}),
});

export const dnsSchema = z.strictObject({
  /** DNS servers as "host" or "host:port"; empty = the system's resolvers. */
  servers: z.array(z.string().min(1)).default([]),
  /** How long answers are cached (temporary failures never are). */
  cache_ttl: durationSchema.default(30_000),
});

export type DomainsConfig = z.output<typeof domainsSchema>;
export type DnsConfig = z.output<typeof dnsSchema>;
