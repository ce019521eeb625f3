/**
 * Delay warnings: a soft bounce older than the profile's `delay_warning` gets the sender a DSN
 * with action "delayed" (RFC 3464 §2.3.3), at most `delay_warnings` of them, one per period:
 * the k-th (from 0) is due once the message is (k + 1) × delay_warning old.
 */
import type { BounceProfile } from './bounce-profile.js';

export interface DelayFacts {
  readonly receivedAt: number;
  readonly now: number;
  /** Delay DSNs already sent for this message. */
  readonly warningsSent: number;
}

export function delayWarningDue(profile: BounceProfile, facts: DelayFacts): boolean {
  if (!profile.sendDelayDsn || facts.warningsSent >= profile.delayWarnings) return false;
  return facts.now - facts.receivedAt >= profile.delayWarningMs * (facts.warningsSent + 1);
}
