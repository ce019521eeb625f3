/**
 * RCPT-time recipient validation in one call: directory lookup, usage of the mailboxes the
 * address reaches (from maildirsize, not by summing files), then the pure
 * {@link recipientVerdict}. What the policy engine calls for a recipient in a local domain.
 */
import type { OverQuotaMode } from '../config/mailboxes-schema.js';
import type { MailboxQuota } from './mailbox-quota.js';
import { mailboxesOf, recipientVerdict, type RecipientVerdict } from './recipient-check.js';
import type { LookupResult } from './user-directory.js';

export interface RecipientVerifierOptions {
  readonly directory: { lookup(address: string): LookupResult };
  /** null: no quota check at RCPT (transport lmtp: the mail store answers 452/552 itself). */
  readonly quota: MailboxQuota | null;
  readonly overQuota: OverQuotaMode;
}

export interface RecipientCheckResult {
  readonly lookup: LookupResult;
  /** null: the domain is not local; the relay rules decide. */
  readonly verdict: RecipientVerdict | null;
}

export class RecipientVerifier {
  constructor(private readonly options: RecipientVerifierOptions) {}

  /** `address`: the RCPT forward-path without brackets; `declaredSize`: MAIL FROM's SIZE= or null. */
  async verify(address: string, declaredSize: number | null): Promise<RecipientCheckResult> {
    const lookup = this.options.directory.lookup(address);
    const usage = new Map<string, number>();
    const quota = this.options.quota;
    if (quota !== null) {
      for (const user of mailboxesOf(lookup)) {
        if (user.quota === null || user.status !== 'active' || usage.has(user.key)) continue;
        try {
          usage.set(user.key, (await quota.usage(user)).bytes);
        } catch {
          // Unreadable maildirsize and Maildir: not checked here; delivery enforces the quota.
        }
      }
    }
    return { lookup, verdict: recipientVerdict({ lookup, overQuota: this.options.overQuota, declaredSize, usage }) };
  }
}
