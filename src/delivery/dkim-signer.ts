/**
 * DKIM signing of outgoing mail (RFC 6376; Ed25519 per RFC 8463) with mailauth, before delivery.
 *
 * Which keys: those of the message's From: domain, or of the closest parent domain that has keys
 * (relaxed DMARC alignment, RFC 7489 §3.1.1); without a From: address, the envelope sender's.
 * Every key of that domain signs (an RSA and an Ed25519 key both do).
 *
 * Memory stays bounded: the stored body is read once to compute the signature — the header
 * section is collected (it holds From:, and is bounded by the receiving limits), the rest is
 * hashed as it streams by — and the delivery then sends the DKIM-Signature header followed by
 * the body read from the store again.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { dkimSign } from 'mailauth';
import type { DkimSigningEntry } from '../config/dkim-schema.js';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimSigningKey {
  readonly domain: string;
  readonly selector: string;
  /** PEM text of the private key. */
  readonly privateKey: string;
  readonly algorithm: DkimAlgorithm;
}

/** The algorithm a private key signs with; throws for other key types and for short RSA keys. */
export function dkimAlgorithmOf(key: KeyObject): DkimAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519-sha256';
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 1024) throw new Error(`an RSA key of ${bits} bits is too short (RFC 8301: at least 1024, 2048 recommended)`);
    return 'rsa-sha256';
  }
  throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} key cannot sign DKIM (RSA or Ed25519 only)`);
}

/** Reads and checks the configured keys; errors name the entry (`dkim.sign[1].key: …`). */
export function loadDkimKeys(entries: readonly DkimSigningEntry[]): DkimSigningKey[] {
  return entries.map((e, i) => {
    try {
      const pem = readFileSync(e.key, 'utf8');
      const algorithm = dkimAlgorithmOf(createPrivateKey(pem));
      return { domain: e.domain, selector: e.selector, privateKey: pem, algorithm };
    } catch (err) {
      throw new Error(`dkim.sign[${i}].key: ${e.key}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}

/** The From: header's address domains, read from a header section (unfolded, comments ignored). */
export function fromDomains(header: string): string[] {
  const unfolded = header.replace(/\r?\n[ \t]+/g, ' ');
  const out: string[] = [];
  for (const line of unfolded.split(/\r?\n/)) {
    const m = /^from\s*:(.*)$/i.exec(line);
    if (!m) continue;
    const value = m[1].replace(/\([^()]*\)/g, ' ');
    const angle = [...value.matchAll(/<[^<>@\s]+@([^<>\s]+)>/g)].map((x) => x[1]);
    const bare = angle.length > 0 ? angle : [...value.matchAll(/[^\s<>,;:"]+@([A-Za-z0-9.-]+)/g)].map((x) => x[1]);
    for (const d of bare) out.push(d.toLowerCase().replace(/\.$/, ''));
  }
  return out;
}

export interface DkimSignerOptions {
  /** Signature time (t=); default now. */
  readonly clock?: () => number;
  /** Header fields to sign; default mailauth's list (From, To, Subject, Date, Message-ID, MIME …). */
  readonly headerList?: readonly string[];
  /** At most this much of the header section is collected to find From: (default 1 MiB). */
  readonly maxHeaderBytes?: number;
}

export class DkimSigner {
  private readonly byDomain = new Map<string, DkimSigningKey[]>();

  constructor(keys: readonly DkimSigningKey[], private readonly opts: DkimSignerOptions = {}) {
    for (const k of keys) {
      const list = this.byDomain.get(k.domain) ?? [];
      list.push(k);
      this.byDomain.set(k.domain, list);
    }
  }

  get size(): number {
    return this.byDomain.size;
  }

  /** The keys for mail from `domain`: its own, else the closest parent domain's; empty when none. */
  keysFor(domain: string): readonly DkimSigningKey[] {
    let d = domain.toLowerCase().replace(/\.$/, '');
    for (;;) {
      const keys = this.byDomain.get(d);
      if (keys) return keys;
      const dot = d.indexOf('.');
      if (dot < 0) return [];
      d = d.slice(dot + 1);
      if (!d.includes('.')) return []; // never a bare top-level domain
    }
  }

  /**
   * The DKIM-Signature header field(s) for the message `body()` yields (read once), CRLF-terminated;
   * "" when no key applies. `envelopeSender` ("" for <>) decides when the message has no From:.
   * Throws when signing fails (the caller decides whether to send unsigned).
   */
  async sign(body: () => AsyncIterable<Uint8Array>, envelopeSender: string): Promise<string> {
    if (this.byDomain.size === 0) return '';
    const source = body()[Symbol.asyncIterator]();
    // Collect the header section (up to its blank line) to find From:.
    const head: Buffer[] = [];
    let headBytes = 0;
    let text = '';
    const max = this.opts.maxHeaderBytes ?? 1024 * 1024;
    for (;;) {
      const next = await source.next();
      if (next.done) break;
      const chunk = Buffer.from(next.value);
      head.push(chunk);
      headBytes += chunk.length;
      text += chunk.toString('latin1');
      if (/\r?\n\r?\n/.test(text) || headBytes > max) break;
    }
    const headerEnd = text.search(/\r?\n\r?\n/);
    const header = headerEnd >= 0 ? text.slice(0, headerEnd + 1) : text;
    const domains = fromDomains(header);
    const senderDomain = envelopeSender.includes('@') ? envelopeSender.slice(envelopeSender.lastIndexOf('@') + 1) : '';
    const candidates = domains.length > 0 ? domains : senderDomain ? [senderDomain] : [];
    let keys: readonly DkimSigningKey[] = [];
    for (const d of candidates) {
      keys = this.keysFor(d);
      if (keys.length > 0) break;
    }
    if (keys.length === 0) {
      await source.return?.();
      return '';
    }
    async function* whole(): AsyncGenerator<Buffer> {
      for (const h of head) yield h;
      for (;;) {
        const next = await source.next();
        if (next.done) return;
        yield Buffer.from(next.value);
      }
    }
    const signTime = new Date((this.opts.clock ?? Date.now)());
    const result = await dkimSign(Readable.from(whole()), {
      signingDomain: keys[0].domain,
      selector: keys[0].selector,
      privateKey: keys[0].privateKey,
      signTime,
      ...(this.opts.headerList ? { headerList: [...this.opts.headerList] } : {}),
      signatureData: keys.map((k) => ({
        signingDomain: k.domain,
        selector: k.selector,
        privateKey: k.privateKey,
        algorithm: k.algorithm,
        canonicalization: 'relaxed/relaxed',
      })),
    });
    if (result.errors.length > 0) {
      // mailauth reports { selector, signingDomain, err } records here.
      const first = result.errors[0] as unknown as { err?: unknown; selector?: string; signingDomain?: string };
      const why = first.err instanceof Error ? first.err.message : String(first.err ?? first);
      throw new Error(`DKIM signing with ${first.selector ?? '?'}._domainkey.${first.signingDomain ?? '?'} failed: ${why}`);
    }
    return result.signatures.trim() === '' ? '' : result.signatures.replace(/\r?\n?$/, '\r\n');
  }
}
