/**
 * Sender authentication at the end of data, with mailauth: SPF (RFC 7208) for the client address
 * and MAIL FROM (or HELO), DKIM (RFC 6376) signatures, the ARC chain (RFC 8617), DMARC (RFC 7489)
 * for the From: domain — then an `Authentication-Results:` header (RFC 8601) and what the policy
 * says the outcome gets.
 *
 * Streaming: the body is not buffered. SPF starts when the data starts (it needs only the
 * envelope); body bytes go into mailauth's DKIM verifier through a PassThrough as they arrive,
 * where they are hashed and dropped (only the header section is kept, bounded by
 * `maxHeaderBytes`: a message whose header grows past it is refused by the session anyway, so
 * feeding stops there). DKIM keys, ARC and DMARC are looked up at the end of data.
 *
 * DNS goes through `SenderAuthDns` (the project's resolver, structurally): `mailauthResolver`
 * turns its answers into the shapes and error codes mailauth expects, keeping a hard "does not
 * exist" (ENOTFOUND, ENODATA) apart from a soft "could not find out" (ESERVFAIL → temperror).
 */
import { PassThrough } from 'node:stream';
import { arc, dkimVerify, dmarc, spf } from 'mailauth';
import type { DKIMResult as MailauthDkimResult } from 'mailauth';
import type { SenderAuthSettings } from '../config/sender-auth-schema.js';
import type { ReplyId } from '../smtp/reply-catalogue.js';
import type { DnsAnswer, MxRecord } from './facts.js';

/** The lookups sender authentication asks (the DnsResolver fits it). */
export interface SenderAuthDns {
  a(name: string): Promise<DnsAnswer<string>>;
  aaaa(name: string): Promise<DnsAnswer<string>>;
  mx(name: string): Promise<DnsAnswer<MxRecord>>;
  txt(name: string): Promise<DnsAnswer<string>>;
  ptr(ip: string): Promise<DnsAnswer<string>>;
}

type MailauthResolver = (name: string, rrtype: string) => Promise<unknown[]>;

/** An error as node:dns raises it: mailauth looks at `code`. */
function dnsError(code: string, name: string, rrtype: string, detail: string): Error {
  const err = new Error(`${rrtype} ${name}: ${detail}`) as Error & { code: string; hostname: string };
  err.code = code;
  err.hostname = name;
  return err;
}

/** 4.3.2.1.in-addr.arpa → 1.2.3.4; the 32 nibbles of ip6.arpa → an IPv6 address; else null. */
export function addressOfReverseName(name: string): string | null {
  const n = name.toLowerCase().replace(/\.$/, '');
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(n);
  if (v4) return [v4[4], v4[3], v4[2], v4[1]].join('.');
  const v6 = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(n);
  if (!v6) return null;
  const nibbles = v6[1].split('.').filter((x) => x !== '').reverse();
  const groups: string[] = [];
  for (let i = 0; i < 32; i += 4) groups.push(nibbles.slice(i, i + 4).join(''));
  return groups.join(':');
}

/**
 * mailauth's resolver (dns.promises.resolve's shape) over the project's resolver: TXT as lists of
 * strings, A/AAAA/PTR as strings, MX as { exchange, priority }; NXDOMAIN → ENOTFOUND, no records
 * → ENODATA, a temporary failure → ESERVFAIL (mailauth's temperror). A resolver that throws is a
 * temporary failure too.
 */
export function mailauthResolver(dns: SenderAuthDns): MailauthResolver {
  const answer = async <T>(name: string, rrtype: string, ask: () => Promise<DnsAnswer<T>>): Promise<T[]> => {
    let a: DnsAnswer<T>;
    try {
      a = await ask();
    } catch (err) {
      throw dnsError('ESERVFAIL', name, rrtype, err instanceof Error ? err.message : String(err));
    }
    if (a.ok) return [...a.records];
    if (a.kind === 'nxdomain') throw dnsError('ENOTFOUND', name, rrtype, a.error);
    if (a.kind === 'nodata') throw dnsError('ENODATA', name, rrtype, a.error);
    throw dnsError('ESERVFAIL', name, rrtype, a.error);
  };
  return async (name, rrtype) => {
    switch (rrtype.toUpperCase()) {
      case 'TXT': return (await answer(name, 'TXT', () => dns.txt(name))).map((t) => [t]);
      case 'A': return answer(name, 'A', () => dns.a(name));
      case 'AAAA': return answer(name, 'AAAA', () => dns.aaaa(name));
      case 'MX': return (await answer(name, 'MX', () => dns.mx(name))).map((m) => ({ exchange: m.exchange, priority: m.priority }));
      case 'PTR': {
        const ip = addressOfReverseName(name);
        if (ip === null) throw dnsError('ENOTFOUND', name, 'PTR', 'not a reverse-lookup name');
        return answer(name, 'PTR', () => dns.ptr(ip));
      }
      default:
        throw dnsError('ENOTIMP', name, rrtype, 'record type not supported');
    }
  };
}

// ── results ─────────────────────────────────────────────────────────────────────────────────

export type AuthResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror' | 'policy';

export interface SpfOutcome {
  readonly result: AuthResult;
  /** The domain checked (MAIL FROM's, or HELO's for the null sender). */
  readonly domain: string;
  readonly info: string;
}

export interface DkimOutcome {
  readonly result: AuthResult;
  readonly domain: string | null;
  /** Why (mailauth's comment): "bad signature", "body hash did not verify", "no key"… */
  readonly comment: string | null;
  readonly info: string;
}

export interface DmarcOutcome {
  readonly result: AuthResult;
  /** The From: domain. */
  readonly domain: string;
  /** The policy in force for it (p, or sp for a subdomain): null without a DMARC record. */
  readonly policy: 'none' | 'quarantine' | 'reject' | null;
  readonly pct: number | null;
  readonly info: string;
}

export interface SenderAuthResults {
  readonly spf: SpfOutcome;
  readonly dkim: readonly DkimOutcome[];
  readonly arc: { readonly result: AuthResult; readonly info: string } | null;
  /** One per distinct From: domain (usually one; none without a From: address). */
  readonly dmarc: readonly DmarcOutcome[];
}

function asResult(r: unknown): AuthResult {
  const s = String(r ?? 'none').toLowerCase();
  if (s === 'temperr') return 'temperror';
  return (['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy'] as const).find((x) => x === s) ?? 'neutral';
}

// ── the check of one message ────────────────────────────────────────────────────────────────

export interface MessageCheckInput {
  readonly ip: string;
  readonly helo: string | null;
  /** MAIL FROM as an address (local@domain), "" for the null sender. */
  readonly sender: string;
  /** Our hostname: the authserv-id and the SPF comments' MTA name. */
  readonly hostname: string;
  readonly dns: SenderAuthDns;
  readonly minKeyBits: number;
  /** Feeding stops once the header section grows past this (the session refuses such a message). */
  readonly maxHeaderBytes: number;
}

/**
 * The checks of one message while it arrives: `write` body bytes in order, then `finish` for the
 * results; `abort` when the message is abandoned.
 */
/** Body bytes written to the verifier but not hashed yet, beyond which the writer should wait. */
const BACKLOG_BYTES = 1024 * 1024;

export class SenderAuthCheck {
  private readonly stream = new PassThrough({ highWaterMark: BACKLOG_BYTES });
  private readonly spfResult: Promise<SpfOutcome>;
  private readonly dkimResult: Promise<Awaited<ReturnType<typeof dkimVerify>> | null>;
  private readonly resolver: MailauthResolver;
  /** Bytes of the header section so far, and the end of the last chunk (to find CRLF CRLF across chunks). */
  private headerBytes = 0;
  private inHeader = true;
  private tail = '';
  private overflow = false;
  private ended = false;

  constructor(private readonly input: MessageCheckInput) {
    this.resolver = mailauthResolver(input.dns);
    const helo = input.helo === null ? undefined : input.helo.replace(/^\[(?:IPv6:)?(.*)\]$/i, '[$1]');
    this.spfResult = spf({
      sender: input.sender,
      ip: input.ip,
      helo,
      mta: input.hostname,
      resolver: this.resolver as never,
    }).then(
      (r) => ({ result: asResult(r.status.result), domain: r.domain, info: r.info }),
      (err: unknown) => ({ result: 'temperror' as const, domain: '', info: `spf=temperror (${safeComment(err)})` }),
    );
    this.dkimResult = dkimVerify(this.stream, {
      resolver: this.resolver as never,
      sender: input.sender || undefined,
      minBitLength: input.minKeyBits,
    }).catch(() => null);
  }

  /** Body bytes as received (dot-unstuffed). They are hashed, not kept. */
  write(chunk: Buffer): void {
    if (this.ended || this.overflow) return;
    if (this.inHeader) {
      const text = this.tail + chunk.toString('latin1');
      const end = text.search(/\r?\n\r?\n/);
      if (end >= 0) {
        this.inHeader = false;
      } else {
        this.headerBytes += chunk.length;
        this.tail = text.slice(-3);
        if (this.headerBytes > this.input.maxHeaderBytes) {
          // The session refuses this message (552 5.3.4); stop feeding the verifier.
          this.overflow = true;
          this.stream.destroy();
          return;
        }
      }
    }
    // A copy: the session's chunk is a slice of its input buffer, valid only during this call.
    this.stream.write(Buffer.from(chunk));
  }

  /** More than BACKLOG_BYTES wait for the verifier: the caller should stop reading until `drained()`. */
  get backlogged(): boolean {
    return !this.ended && !this.overflow && this.stream.writableNeedDrain;
  }

  drained(): Promise<void> {
    if (!this.backlogged) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
    });
  }

  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.stream.destroy();
  }

  /** The end of data: every result. */
  async finish(): Promise<SenderAuthResults> {
    this.ended = true;
    this.stream.end();
    const [spfOutcome, dkim] = await Promise.all([this.spfResult, this.dkimResult]);
    const dkimRows: MailauthDkimResult[] = (dkim?.results ?? []) as MailauthDkimResult[];
    const dkimOutcomes: DkimOutcome[] = dkim === null
      ? [{ result: 'temperror', domain: null, comment: 'verification failed', info: 'dkim=temperror (verification failed)' }]
      : dkimRows.map((r) => ({
        result: asResult(r.status?.result),
        domain: r.signingDomain ?? null,
        comment: typeof r.status?.comment === 'string' ? r.status.comment : null,
        info: r.info ?? `dkim=${asResult(r.status?.result)}`,
      }));

    let arcOutcome: SenderAuthResults['arc'] = null;
    const arcData = (dkim as { arc?: unknown } | null)?.arc;
    if (arcData) {
      try {
        const a = await arc(arcData as never, { resolver: this.resolver as never, minBitLength: this.input.minKeyBits });
        arcOutcome = { result: asResult(a.status?.result), info: a.info ?? `arc=${asResult(a.status?.result)}` };
      } catch (err) {
        arcOutcome = { result: 'temperror', info: `arc=temperror (${safeComment(err)})` };
      }
    }

    // DMARC per distinct From: domain (RFC 7489 §6.6.1: a message with several From: domains is
    // checked for each; the strictest outcome counts).
    const fromAddresses = [...new Map((dkim?.headerFrom ?? []).map((a) => [a.slice(a.lastIndexOf('@') + 1).toLowerCase(), a])).values()];
    const spfDomains = spfOutcome.result === 'pass' && spfOutcome.domain ? [spfOutcome.domain] : [];
    const dkimDomains = dkimRows
      .filter((r) => r.status?.result === 'pass')
      .map((r) => ({ id: r.id, domain: r.signingDomain, aligned: r.status?.aligned, underSized: r.status?.underSized }));
    const dmarcOutcomes: DmarcOutcome[] = [];
    for (const headerFrom of fromAddresses) {
      try {
        const d = await dmarc({
          headerFrom,
          spfDomains,
          dkimDomains: dkimDomains as never,
          arcResult: (arcOutcome ? { status: { result: arcOutcome.result } } : undefined) as never,
          resolver: this.resolver as never,
        });
        if (!d) continue;
        const policy = String(d.policy ?? '').toLowerCase();
        dmarcOutcomes.push({
          result: asResult(d.status?.result),
          domain: d.domain ?? headerFrom.slice(headerFrom.lastIndexOf('@') + 1),
          policy: policy === 'reject' || policy === 'quarantine' || policy === 'none' ? policy : null,
          pct: typeof d.pct === 'number' ? d.pct : null,
          info: d.info ?? `dmarc=${asResult(d.status?.result)}`,
        });
      } catch (err) {
        dmarcOutcomes.push({
          result: 'temperror', domain: headerFrom.slice(headerFrom.lastIndexOf('@') + 1), policy: null, pct: null,
          info: `dmarc=temperror (${safeComment(err)})`,
        });
      }
    }
    return { spf: spfOutcome, dkim: dkimOutcomes, arc: arcOutcome, dmarc: dmarcOutcomes };
  }
}

function safeComment(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/[()\\]/g, ' ').slice(0, 200);
}

// ── the header ──────────────────────────────────────────────────────────────────────────────

/**
 * `Authentication-Results: <authserv-id>; dkim=…; spf=…; arc=…; dmarc=…` (RFC 8601 §2.2), one
 * method per line, CRLF-terminated. Control characters are replaced (a result never carries a
 * line break into the header), and long lines are folded at spaces.
 */
export function authenticationResultsHeader(authservId: string, results: SenderAuthResults): string {
  const rows = [
    ...results.dkim.map((d) => d.info),
    results.spf.info,
    ...(results.arc ? [results.arc.info] : []),
    ...results.dmarc.map((d) => d.info),
  ];
  // eslint-disable-next-line no-control-regex
  const clean = (s: string): string => s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  const lines = [`Authentication-Results: ${clean(authservId)};`, ...rows.map((r, i) => ` ${clean(r)}${i < rows.length - 1 ? ';' : ''}`)];
  return `${lines.map(fold).join('\r\n')}\r\n`;
}

/** Folds a header line longer than 160 characters at spaces (RFC 5322 §2.2.3). */
function fold(line: string): string {
  if (line.length <= 160) return line;
  const out: string[] = [];
  let rest = line;
  while (rest.length > 160) {
    const at = rest.lastIndexOf(' ', 160);
    if (at <= 1) break;
    out.push(rest.slice(0, at));
    rest = ` ${rest.slice(at + 1)}`;
  }
  out.push(rest);
  return out.join('\r\n');
}

// ── the decision ────────────────────────────────────────────────────────────────────────────

export type SenderAuthDecision =
  | { readonly kind: 'accept'; readonly hold: boolean; readonly why: string }
  | { readonly kind: 'reject'; readonly reply: ReplyId; readonly why: string };

const DMARC_LEVEL = { none: 0, quarantine: 1, reject: 2 } as const;

/**
 * What the results get under `settings`:
 *
 *   1. DMARC (per From: domain, strictest first): a fail under p=reject gets `dmarc_reject`, under
 *      p=quarantine `dmarc_quarantine` (reject → 554 5.7.1 data.content-rejected, quarantine →
 *      held). A fail where a DKIM or SPF lookup failed temporarily is not a fail: it is a
 *      temperror (the missing result might have passed). pct < 100 samples (RFC 7489 §6.6.4): a
 *      message outside the sample gets the next lower policy.
 *   2. SPF fail / softfail → 550 5.7.23 data.spf-fail when set to reject; SPF temperror → 451
 *      4.7.24 when set to defer — neither when DMARC passes.
 *   3. DMARC temperror (its record, or a lookup DMARC needed) → 451 4.7.1 data.content-tempfail
 *      when `temperror: defer`.
 */
export function decideSenderAuth(results: SenderAuthResults, settings: SenderAuthSettings, random: () => number = Math.random): SenderAuthDecision {
  const dmarcPass = results.dmarc.length > 0 && results.dmarc.every((d) => d.result === 'pass');
  const lookupTrouble = results.spf.result === 'temperror' || results.dkim.some((d) => d.result === 'temperror');
  const effective = results.dmarc.map((d) => ({ ...d, result: d.result === 'fail' && lookupTrouble ? 'temperror' as const : d.result }));

  const spf = results.spf.result;
  if (!dmarcPass) {
    if ((spf === 'fail' && settings.spf_fail === 'reject') || (spf === 'softfail' && settings.spf_softfail === 'reject')) {
      return { kind: 'reject', reply: 'data.spf-fail', why: `SPF ${spf} for ${results.spf.domain}` };
    }
  }

  let hold: { why: string } | null = null;
  const failing = effective
    .filter((d) => d.result === 'fail' && d.policy !== null && d.policy !== 'none')
    .sort((a, b) => DMARC_LEVEL[b.policy!] - DMARC_LEVEL[a.policy!]);
  for (const d of failing) {
    let policy = d.policy as 'quarantine' | 'reject';
    const sampled = d.pct === null || d.pct >= 100 || random() * 100 < d.pct;
    if (!sampled) {
      if (policy === 'quarantine') continue;
      policy = 'quarantine';
    }
    const action = policy === 'reject' ? settings.dmarc_reject : settings.dmarc_quarantine;
    const why = `DMARC fail for ${d.domain} (p=${d.policy}${sampled ? '' : `, outside pct=${d.pct}: ${policy}`})`;
    if (action === 'reject') return { kind: 'reject', reply: 'data.content-rejected', why };
    if (action === 'quarantine') hold ??= { why };
  }

  if (!dmarcPass && spf === 'temperror' && settings.spf_temperror === 'defer') {
    return { kind: 'reject', reply: 'data.spf-temperror', why: `SPF temperror for ${results.spf.domain}` };
  }
  const undecided = effective.find((d) => d.result === 'temperror');
  if (undecided && settings.temperror === 'defer') {
    return { kind: 'reject', reply: 'data.content-tempfail', why: `DMARC for ${undecided.domain} could not be decided (DNS temporary failure)` };
  }
  if (hold) return { kind: 'accept', hold: true, why: `quarantined: ${hold.why}` };
  const summary = [`spf=${spf}`, ...results.dkim.map((d) => `dkim=${d.result}`), ...effective.map((d) => `dmarc=${d.result}`)].join(' ');
  return { kind: 'accept', hold: false, why: summary };
}
