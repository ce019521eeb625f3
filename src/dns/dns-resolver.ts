/**
 * DnsResolver: the one place Postern asks DNS (rDNS, MX, A/AAAA, TXT for SPF/DKIM/DMARC, DNSBL).
 * Leaf I/O over node:dns with a hard timeout per lookup, a small bounded cache, and answers that
 * keep apart what the RFCs keep apart: "does not exist" (NXDOMAIN), "exists but has no such
 * records" (NODATA) and "could not find out now" (SERVFAIL, timeout, refused) — a hard answer
 * versus a soft one for every caller (RFC 5321 §5.1, RFC 7505, RFC 7372).
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

export type DnsFailureKind = 'nxdomain' | 'nodata' | 'temporary';

export type DnsAnswer<T> =
  | { readonly ok: true; readonly records: readonly T[] }
  | { readonly ok: false; readonly kind: DnsFailureKind; readonly error: string };

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

export interface DnsResolverOptions {
  /** "host" or "host:port" (IPv6 as "[::1]:53"); empty or absent = the system's resolvers. */
  readonly servers?: readonly string[];
  /** Hard limit for one lookup, retries included. */
  readonly timeoutMs: number;
  /** How long answers (positive and negative, never temporary failures) are kept. 0 = no cache. */
  readonly cacheMs?: number;
  readonly maxCacheEntries?: number;
  readonly clock?: () => number;
  /** Called after each lookup that went to the network (not cache hits): metrics. */
  readonly onLookup?: (type: string, result: 'ok' | 'nxdomain' | 'nodata' | 'temporary') => void;
}

/** What the rest of Postern sees; policy and delivery declare the parts they use structurally. */
export interface DnsLookups {
  a(name: string): Promise<DnsAnswer<string>>;
  aaaa(name: string): Promise<DnsAnswer<string>>;
  mx(name: string): Promise<DnsAnswer<MxRecord>>;
  txt(name: string): Promise<DnsAnswer<string>>;
  /** PTR names of an IPv4 or IPv6 address. */
  ptr(ip: string): Promise<DnsAnswer<string>>;
}

interface CacheEntry {
  readonly expires: number;
  readonly answer: DnsAnswer<unknown>;
}

export class DnsResolver implements DnsLookups {
  private readonly resolver: Resolver;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly clock: () => number;
  /** Lookups asked and lookups that failed temporarily (for metrics). */
  readonly counters = { lookups: 0, temporaryFailures: 0 };

  constructor(private readonly opts: DnsResolverOptions) {
    // c-ares retries on its own; our timer below is the hard cap.
    this.resolver = new Resolver({ timeout: Math.max(50, Math.floor(opts.timeoutMs / 2)), tries: 2 });
    if (opts.servers && opts.servers.length > 0) this.resolver.setServers([...opts.servers]);
    this.clock = opts.clock ?? Date.now;
  }

  a(name: string): Promise<DnsAnswer<string>> {
    return this.lookup(`A ${name}`, async () => withTtl(await this.resolver.resolve4(name, { ttl: true })));
  }

  aaaa(name: string): Promise<DnsAnswer<string>> {
    return this.lookup(`AAAA ${name}`, async () => withTtl(await this.resolver.resolve6(name, { ttl: true })));
  }

  mx(name: string): Promise<DnsAnswer<MxRecord>> {
    return this.lookup(`MX ${name}`, () => this.resolver.resolveMx(name));
  }

  txt(name: string): Promise<DnsAnswer<string>> {
    // A TXT record is a list of character-strings; callers want them joined (RFC 7208 §3.3).
    return this.lookup(`TXT ${name}`, async () => (await this.resolver.resolveTxt(name)).map((parts) => parts.join('')));
  }

  ptr(ip: string): Promise<DnsAnswer<string>> {
    // Not resolver.reverse(): c-ares' gethostbyaddr turns SERVFAIL into ENOTFOUND, which would
    // make a broken reverse zone look like a missing PTR (a 5xx where a 4xx is due).
    const name = reverseLookupName(ip);
    if (name === null) return Promise.resolve({ ok: false, kind: 'nxdomain', error: `not an IP address: ${ip}` });
    return this.lookup(`PTR ${ip}`, () => this.resolver.resolvePtr(name));
  }

  /**
   * One lookup through the cache. An answer is kept for `cacheMs`, or for the records' TTL when
   * it is shorter and known (A/AAAA; node:dns reports no TTL for other types).
   */
  private async lookup<T>(key: string, ask: () => Promise<T[] | RecordsWithTtl<T>>): Promise<DnsAnswer<T>> {
    const now = this.clock();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) return hit.answer as DnsAnswer<T>;
    this.counters.lookups++;
    let ttlSeconds: number | null = null;
    const answer = await this.withTimeout(async () => {
      const r = await ask();
      if (Array.isArray(r)) return r;
      ttlSeconds = r.ttlSeconds;
      return r.records;
    });
    if (!answer.ok && answer.kind === 'temporary') this.counters.temporaryFailures++;
    this.opts.onLookup?.(key.slice(0, key.indexOf(' ')), answer.ok ? 'ok' : answer.kind);
    const cacheMs = this.opts.cacheMs ?? 0;
    if (cacheMs > 0 && (answer.ok || answer.kind !== 'temporary')) {
      if (this.cache.size >= (this.opts.maxCacheEntries ?? 10_000)) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
      const keepMs = ttlSeconds === null ? cacheMs : Math.min(cacheMs, ttlSeconds * 1000);
      if (keepMs > 0) this.cache.set(key, { expires: now + keepMs, answer });
    }
    return answer;
  }

  private withTimeout<T>(ask: () => Promise<T[]>): Promise<DnsAnswer<T>> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, kind: 'temporary', error: `timeout after ${this.opts.timeoutMs} ms` }), this.opts.timeoutMs);
      ask().then(
        (records) => {
          clearTimeout(timer);
          resolve(records.length > 0 ? { ok: true, records } : { ok: false, kind: 'nodata', error: 'no records' });
        },
        (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          resolve(classifyDnsError(err));
        },
      );
    });
  }
}

interface RecordsWithTtl<T> {
  readonly records: T[];
  /** The smallest TTL of the records (RFC 2181 §5.2: one RRset has one TTL). */
  readonly ttlSeconds: number;
}

function withTtl(records: ReadonlyArray<{ address: string; ttl: number }>): RecordsWithTtl<string> {
  return { records: records.map((r) => r.address), ttlSeconds: Math.min(...records.map((r) => r.ttl)) };
}

/** 192.0.2.1 → 1.2.0.192.in-addr.arpa; IPv6 → 32 nibbles under ip6.arpa (RFC 3596 §2.5); null if not an address. */
export function reverseLookupName(ip: string): string | null {
  const family = isIP(ip);
  if (family === 4) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  if (family !== 6) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return reverseLookupName(mapped[1]);
  const [head, tail] = ip.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array.from({ length: tail === undefined ? 0 : 8 - h.length - t.length }, () => '0'), ...t];
  return `${groups.map((g) => g.padStart(4, '0')).join('').split('').reverse().join('.')}.ip6.arpa`;
}

/** node:dns error codes → hard (nxdomain, nodata) or soft (temporary). */
export function classifyDnsError(err: NodeJS.ErrnoException): DnsAnswer<never> {
  const code = err.code ?? '';
  if (code === 'ENOTFOUND') return { ok: false, kind: 'nxdomain', error: code };
  if (code === 'ENODATA') return { ok: false, kind: 'nodata', error: code };
  return { ok: false, kind: 'temporary', error: code || err.message };
}
