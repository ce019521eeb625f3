/**
 * A real DNS server on loopback (dns2 over UDP) serving the test's own zone data, so DNS
 * behaviour is tested through the same resolver code production uses. Names under a
 * `servfail` suffix answer SERVFAIL; names under a `hang` suffix are never answered.
 */
import dns2 from 'dns2';
import type { AddressInfo } from 'node:net';

export type ZoneRecord =
  | { readonly name: string; readonly type: 'A' | 'AAAA' | 'PTR' | 'CNAME' | 'TXT'; readonly value: string; readonly ttl?: number }
  | { readonly name: string; readonly type: 'MX'; readonly value: string; readonly priority: number; readonly ttl?: number };

export interface ZoneData {
  readonly records: readonly ZoneRecord[];
  readonly servfail?: readonly string[];
  readonly hang?: readonly string[];
}

const { Packet } = dns2;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

/** 192.0.2.1 → 1.2.0.192.in-addr.arpa; IPv6 → nibble form under ip6.arpa. */
export function reverseName(ip: string): string {
  if (ip.includes(':')) {
    const full = expandIPv6(ip).replace(/:/g, '');
    return `${full.split('').reverse().join('.')}.ip6.arpa`;
  }
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

function expandIPv6(ip: string): string {
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const missing = 8 - h.length - t.length;
  const groups = [...h, ...Array.from({ length: tail === undefined ? 0 : missing }, () => '0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

/** A TXT value as RFC 1035 character-strings of at most 255 octets (DKIM keys are longer). */
function characterStrings(value: string): string | string[] {
  if (Buffer.byteLength(value) <= 255) return value;
  const out: string[] = [];
  for (let i = 0; i < value.length; i += 255) out.push(value.slice(i, i + 255));
  return out;
}

function under(name: string, suffixes: readonly string[] | undefined): boolean {
  return (suffixes ?? []).some((s) => name === s || name.endsWith(`.${s}`));
}

export class LoopbackDnsServer {
  private zone: ZoneData;
  private server: ReturnType<typeof dns2.createServer> | null = null;
  port = 0;
  /** Queries received, as "TYPE name". */
  readonly queries: string[] = [];

  constructor(zone: ZoneData) {
    this.zone = zone;
  }

  /** Replaces the zone data (e.g. "DNS goes away": everything SERVFAIL). */
  setZone(zone: ZoneData): void {
    this.zone = zone;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Listens on 127.0.0.1:`port` (0: any free port; a stopped server's port to come back on it). */
  async start(port = 0): Promise<this> {
    const server = dns2.createServer({
      udp: true,
      handle: (request, send) => {
        const response = Packet.createResponseFromRequest(request);
        const q = request.questions[0];
        const name = q.name.toLowerCase().replace(/\.$/, '');
        const typeName = Object.entries(Packet.TYPE).find(([, v]) => v === q.type)?.[0] ?? String(q.type);
        this.queries.push(`${typeName} ${name}`);
        if (under(name, this.zone.hang)) return; // never answered: the client times out
        response.header.aa = 1;
        if (under(name, this.zone.servfail)) {
          response.header.rcode = RCODE_SERVFAIL;
          void send(response);
          return;
        }
        const owned = this.zone.records.filter((r) => r.name.toLowerCase() === name);
        const exists = owned.length > 0 || this.zone.records.some((r) => r.name.toLowerCase().endsWith(`.${name}`));
        if (!exists) response.header.rcode = RCODE_NXDOMAIN;
        for (const r of owned) {
          if (Packet.TYPE[r.type] !== q.type) continue;
          const base = { name: q.name, type: q.type, class: Packet.CLASS.IN, ttl: r.ttl ?? 60 };
          if (r.type === 'MX') response.answers.push({ ...base, exchange: r.value, priority: r.priority } as never);
          else if (r.type === 'A' || r.type === 'AAAA') response.answers.push({ ...base, address: r.value } as never);
          else if (r.type === 'TXT') response.answers.push({ ...base, data: characterStrings(r.value) } as never);
          else response.answers.push({ ...base, domain: r.value } as never);
        }
        void send(response);
      },
    });
    const addrs = await server.listen({ udp: { port, address: '127.0.0.1', type: 'udp4' } } as never);
    this.server = server;
    this.port = (addrs as unknown as { udp: AddressInfo }).udp.port;
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = null;
  }
}
