/**
 * What the policy did and why, step by step: which checks ran, with which DNS answers, and what
 * they decided. The engine reports to an optional `PolicyObserver`; `postern policy explain`
 * prints it, and the same steps can go to debug logs.
 */
import type { DnsAnswer, MxRecord } from './facts.js';

/** One DNS question and its answer, as text: "PTR 192.0.2.1" → "mail.example.test". */
export interface DnsLookupRecord {
  readonly query: string;
  readonly answer: string;
}

export type PolicyStage = 'session' | 'connect' | 'helo' | 'auth' | 'mail' | 'rcpt' | 'data';

export interface PolicyStep {
  readonly stage: PolicyStage;
  /** What was checked: "sender group RELAYLIST: ip 127.0.0.0/8", "reverse DNS (require_fcrdns)". */
  readonly check: string;
  /** What it found: "match", "no match", "listed", "pass", "fail: no PTR record", … */
  readonly outcome: string;
  /** The DNS lookups this check asked, in order. */
  readonly dns: readonly DnsLookupRecord[];
}

export interface PolicyObserver {
  step(step: PolicyStep): void;
}

/** A DNS answer as one line: "127.0.0.2", "a.test, b.test", "NXDOMAIN", "no records", "temporary failure (ETIMEOUT)". */
export function describeDnsAnswer(answer: DnsAnswer<string | MxRecord>): string {
  if (answer.ok) {
    return answer.records.map((r) => (typeof r === 'string' ? r : `${r.priority} ${r.exchange === '' ? '.' : r.exchange}`)).join(', ');
  }
  switch (answer.kind) {
    case 'nxdomain': return 'NXDOMAIN';
    case 'nodata': return 'no records';
    case 'temporary': return `temporary failure (${answer.error})`;
  }
}
