/**
 * `dkim:` — DKIM signing of outgoing mail (RFC 6376) per sender domain, with keys from PEM files:
 * an RSA key signs rsa-sha256, an Ed25519 key ed25519-sha256 (RFC 8463); the algorithm follows
 * from the key. Several entries for one domain (an RSA and an Ed25519 key, say) all sign.
 *
 *   dkim:
 *     sign:
 *       - { domain: example.test, selector: s2030, key: ./dkim/example.test.rsa.pem }
 *       - { domain: example.test, selector: ed2030, key: ./dkim/example.test.ed25519.pem }
 *
 * The key's public half goes into DNS as `<selector>._domainkey.<domain> TXT "v=DKIM1; k=rsa;
 * p=…"` (k=ed25519 for Ed25519). Keys are read when the gateway starts.
 */
import { resolve } from 'node:path';
import { z } from 'zod';

const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
const SELECTOR = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}))*$/;

export const dkimSigningEntrySchema = z.strictObject({
  /** The signing domain (d=): mail whose From: domain is this one or below it is signed. */
  domain: z.string().transform((d) => d.toLowerCase().replace(/\.$/, '')).pipe(
    z.string().regex(DOMAIN, { error: 'expected a domain like example.test' }),
  ),
  /** The selector (s=): the key's DNS name is <selector>._domainkey.<domain>. */
  selector: z.string().regex(SELECTOR, { error: 'expected a selector of letters, digits, "-" or "_" (dots between parts)' }),
  /** PEM file of the private key (RSA, at least 1024 bits; or Ed25519); relative to the config file's directory. */
  key: z.string().min(1),
});

export const dkimSchema = z.strictObject({
  sign: z.array(dkimSigningEntrySchema).default([]).superRefine((entries, ctx) => {
    entries.forEach((e, i) => {
      const first = entries.findIndex((o) => o.domain === e.domain && o.selector === e.selector);
      if (first < i) {
        ctx.addIssue({ code: 'custom', path: [i, 'selector'], message: `duplicate selector ${e.selector} for ${e.domain} (also dkim.sign[${first}])` });
      }
    });
  }),
});

export type DkimConfig = z.output<typeof dkimSchema>;
export type DkimSigningEntry = DkimConfig['sign'][number];

/** The key paths made absolute against the config file's directory. */
export function resolveDkimPaths(config: DkimConfig, baseDir: string): DkimConfig {
  return { ...config, sign: config.sign.map((e) => ({ ...e, key: resolve(baseDir, e.key) })) };
}

/** The commented defaults of this section, for DEFAULT_CONFIG_YAML (parses to what an empty file gives). */
export const DKIM_DEFAULT_YAML = `\
dkim:                                # DKIM signing of outgoing (non-local) mail, per From: domain
  sign: []                           # e.g. (RSA key: rsa-sha256; Ed25519 key: ed25519-sha256)
#   - { domain: example.test, selector: s2030, key: ./dkim/example.test.rsa.pem }
#   - { domain: example.test, selector: ed2030, key: ./dkim/example.test.ed25519.pem }
`;
