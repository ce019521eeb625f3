/**
 * DKIM keys made for a test run, as PEM files (what `dkim.sign[].key` names) and as the TXT
 * records a domain publishes (`<selector>._domainkey.<domain>`), for the loopback DNS server.
 * RSA keys are 1024 bits: their record fits a plain UDP answer (the test DNS server has no TCP).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ZoneRecord } from './loopback-dns-server.js';
import type { DkimSigningKey } from '../../src/delivery/dkim-signer.js';

export interface TestDkimKey extends DkimSigningKey {
  /** The PEM file of the private key. */
  readonly file: string;
  /** The `<selector>._domainkey.<domain>` TXT record with the public key. */
  readonly record: ZoneRecord;
}

export function makeDkimKey(domain: string, selector: string, kind: 'rsa' | 'ed25519', dir = mkdtempSync(join(tmpdir(), 'postern-dkim-'))): TestDkimKey {
  const pair = kind === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 1024 })
    : generateKeyPairSync('ed25519');
  const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  // RFC 8463 §4.2: an Ed25519 record carries the bare 32-byte key; RSA the SubjectPublicKeyInfo.
  const p = kind === 'rsa' ? spki.toString('base64') : spki.subarray(spki.length - 32).toString('base64');
  const file = join(dir, `${selector}.${domain}.pem`);
  writeFileSync(file, pem, { mode: 0o600 });
  return {
    domain,
    selector,
    privateKey: pem,
    algorithm: kind === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
    file,
    record: { name: `${selector}._domainkey.${domain}`, type: 'TXT', value: `v=DKIM1; k=${kind}; p=${p}` },
  };
}
