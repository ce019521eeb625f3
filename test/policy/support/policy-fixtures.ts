/**
 * Shared by the policy tests: the zone data of the loopback DNS server (clients on 127.0.0.x
 * with good, lying, missing, failing and hanging reverse DNS; DNSBL listings; sender domains),
 * gateways started from a policy config, and clients that connect from a given loopback address.
 */
import assert from 'node:assert/strict';
import type { PosternConfig } from '../../../src/config/config-schema.js';
import { parseConfigText } from '../../../src/config/load-config.js';
import { DnsResolver } from '../../../src/dns/dns-resolver.js';
import { ConfiguredPolicyEngine, type ConfiguredPolicyEngineOptions } from '../../../src/policy/policy-engine.js';
import { LoopbackDnsServer, reverseName, type ZoneData } from '../../support/loopback-dns-server.js';
import { SmtpTestClient } from '../../support/smtp-test-client.js';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from '../../support/test-gateway.js';

/** The DNS timeout every policy test runs with. */
export const DNS_TIMEOUT_MS = 400;

export const POLICY_ZONE: ZoneData = {
  records: [
    // 127.0.0.10: forward-confirmed
    { name: reverseName('127.0.0.10'), type: 'PTR', value: 'good.example.test' },
    { name: 'good.example.test', type: 'A', value: '127.0.0.10' },
    // 127.0.0.11 and .18: a PTR whose name points elsewhere
    { name: reverseName('127.0.0.11'), type: 'PTR', value: 'liar.example.test' },
    { name: reverseName('127.0.0.18'), type: 'PTR', value: 'liar.example.test' },
    { name: 'liar.example.test', type: 'A', value: '127.0.0.99' },
    // 127.0.0.12: no PTR at all (NXDOMAIN)
    // 127.0.0.13: the PTR lookup fails (SERVFAIL); 127.0.0.14: the PTR lookup hangs
    // 127.0.0.15: a PTR whose forward lookup fails (SERVFAIL)
    { name: reverseName('127.0.0.15'), type: 'PTR', value: 'host.fwdfail.test' },
    // 127.0.0.20 is listed in bl.test, 127.0.0.21 in bl2.test; 127.0.0.22 answers outside 127.0.0.x
    { name: '20.0.0.127.bl.test', type: 'A', value: '127.0.0.2' },
    { name: '21.0.0.127.bl2.test', type: 'A', value: '127.0.0.4' },
    { name: '22.0.0.127.bl.test', type: 'A', value: '10.0.0.1' },
    // 127.0.0.30 and .31: confirmed names for the rdns matchers
    { name: reverseName('127.0.0.30'), type: 'PTR', value: 'mx1.throttle.test' },
    { name: 'mx1.throttle.test', type: 'A', value: '127.0.0.30' },
    { name: reverseName('127.0.0.31'), type: 'PTR', value: 'mx7.regex.test' },
    { name: 'mx7.regex.test', type: 'A', value: '127.0.0.31' },
    // IPv6 loopback: confirmed
    { name: reverseName('::1'), type: 'PTR', value: 'six.example.test' },
    { name: 'six.example.test', type: 'AAAA', value: '::1' },
    // sender domains
    { name: 'mx.test', type: 'MX', value: 'mail.mx.test', priority: 10 },
    { name: 'mail.mx.test', type: 'A', value: '192.0.2.25' },
    { name: 'aonly.test', type: 'A', value: '192.0.2.26' },
    { name: 'nullmx.test', type: 'MX', value: '', priority: 0 },
    { name: 'txtonly.test', type: 'TXT', value: 'no mail here' },
  ],
  servfail: [reverseName('127.0.0.13'), 'fwdfail.test', 'broken.test', 'bl-broken.test'],
  hang: [reverseName('127.0.0.14'), 'slowdomain.test', 'bl-slow.test'],
};

export function startPolicyDns(): Promise<LoopbackDnsServer> {
  return new LoopbackDnsServer(POLICY_ZONE).start();
}

/** The `dns:` and `timeouts:` sections that point Postern's resolver at the loopback server. */
export function dnsSection(dns: LoopbackDnsServer): string {
  return `dns: { servers: ["${dns.address}"], cache_ttl: 0 }\ntimeouts: { dns: ${DNS_TIMEOUT_MS}ms }`;
}

/** Domains and recipients most policy tests share. */
export const MAIL_DOMAINS = [
  'domains:',
  '  local: [example.test]',
  '  relay: { partner.test: "smtp://127.0.0.2:2526" }',
  'recipients:',
  '  valid: [alice@example.test, bob@example.test]',
  '  blocked: [blocked@example.test, "@blocked.test"]',
].join('\n');

/** Starts a gateway with `yaml` plus the DNS sections, runs `fn`, and always stops it. */
export async function withGateway(
  dns: LoopbackDnsServer,
  yaml: string,
  fn: (gw: TestGateway) => Promise<void>,
  opts: TestGatewayOptions = {},
): Promise<void> {
  const gw = await startTestGateway(`${dnsSection(dns)}\n${yaml}`, opts);
  try {
    await fn(gw);
  } finally {
    await gw.stop();
  }
}

/** The config a policy test's gateway runs with (without store and listeners, which the engine does not read). */
export function policyConfig(dns: LoopbackDnsServer, yaml: string): PosternConfig {
  return parseConfigText(`hostname: mx.test\n${dnsSection(dns)}\n${yaml}`, 'policy-test.yaml', { baseDir: process.cwd() });
}

/** The real resolver, pointed at the loopback DNS server. */
export function resolverFor(dns: LoopbackDnsServer): DnsResolver {
  return new DnsResolver({ servers: [dns.address], timeoutMs: DNS_TIMEOUT_MS });
}

/** The engine the gateway would build from `yaml`, with a clock, counters or directory of the test's own. */
export function engineFor(
  dns: LoopbackDnsServer,
  yaml: string,
  opts: Omit<ConfiguredPolicyEngineOptions, 'config' | 'dns'> = {},
): ConfiguredPolicyEngine {
  return new ConfiguredPolicyEngine({ config: policyConfig(dns, yaml), dns: resolverFor(dns), ...opts });
}

/** A clock the test moves by hand. */
export class ManualClock {
  constructor(public now = Date.parse('2030-01-01T00:00:00Z')) {}
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** A client connected from `from` (a loopback address); the caller reads the greeting. */
export function connectFrom(port: number, from: string): Promise<SmtpTestClient> {
  return SmtpTestClient.connect(port, '127.0.0.1', from);
}

/** A client from `from` that got 220 and 250 to EHLO. */
export async function greeted(port: number, from: string, ehlo = 'client.test'): Promise<SmtpTestClient> {
  const c = await connectFrom(port, from);
  assert.equal(await c.code(), '220');
  assert.equal(await c.cmd(`EHLO ${ehlo}`), '250');
  return c;
}

/** "code enhanced text" of the next reply's last line. */
export async function fullReply(c: SmtpTestClient): Promise<string> {
  const r = await c.reply();
  return r.raw.trimEnd().split('\r\n').pop()!;
}

/** Sends `line` and returns the whole last line of its reply ("550 5.7.1 Relay access denied"). */
export async function say(c: SmtpTestClient, line: string): Promise<string> {
  c.write(`${line}\r\n`);
  return fullReply(c);
}

/** One message on an open session after EHLO; returns the end-of-data reply line. */
export async function sendOn(c: SmtpTestClient, from: string, to: readonly string[], body = 'Subject: t\r\n\r\nhi\r\n'): Promise<string> {
  assert.equal(await c.cmd(`MAIL FROM:<${from}>`), '250 2.1.0');
  for (const r of to) assert.equal(await c.cmd(`RCPT TO:<${r}>`), '250 2.1.5', r);
  assert.equal(await c.cmd('DATA'), '354');
  c.write(`${body}.\r\n`);
  return fullReply(c);
}
