/**
 * The mail-flow policy's reverse-DNS requirement against the client's rDNS facts:
 *   require_ptr     the address has a PTR record (Postfix: reject_unknown_reverse_client_hostname)
 *   require_fcrdns  a PTR name whose A/AAAA records lead back to the address
 *                   (Postfix: reject_unknown_client_hostname)
 * A hard miss is 550 5.7.25, a lookup that could not complete 450 4.7.25 (RFC 7372 §3.3).
 */
import type { ReverseDnsCheck } from '../config/policy-schema.js';
import type { ReverseDnsFacts } from './client-dns-facts.js';

export type ReverseDnsVerdict =
  | { readonly result: 'pass'; readonly why: string }
  | { readonly result: 'fail' | 'temporary'; readonly why: string };

export function checkReverseDns(requirement: ReverseDnsCheck, facts: ReverseDnsFacts): ReverseDnsVerdict {
  if (requirement === 'none') return { result: 'pass', why: 'not required' };
  if (facts.ptr === 'temporary') return { result: 'temporary', why: 'the PTR lookup failed temporarily' };
  if (facts.ptr === 'none') return { result: 'fail', why: 'no PTR record' };
  if (requirement === 'require_ptr') return { result: 'pass', why: `PTR ${facts.names.join(', ')}` };
  if (facts.confirmed !== null) return { result: 'pass', why: `${facts.confirmed} is forward-confirmed` };
  if (facts.forwardTemporary) return { result: 'temporary', why: 'a forward lookup of the PTR name failed temporarily' };
  return { result: 'fail', why: `PTR ${facts.names.join(', ')} does not resolve back to the address` };
}
