/** A self-signed certificate made for the test run with openssl (EC P-256, one day). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
}

export function makeTestCertificate(cn = 'mx.test'): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cert-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`,
  ], { stdio: 'ignore' });
  return { dir, cert, key };
}

/** The config's `tls:` line for this certificate (paths quoted as YAML strings). */
export function tlsConfigLine(c: TestCertificate): string {
  return `tls: { cert: ${JSON.stringify(c.cert)}, key: ${JSON.stringify(c.key)} }`;
}
