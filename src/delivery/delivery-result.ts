/** What one delivery run found out about each recipient it tried, before it is recorded. */
import type { Classification } from '../bounce/classify-reply.js';
import type { DeliveryFact } from '../bounce/delivery-fact.js';

export interface RecipientResult {
  /** Position in the envelope. */
  readonly index: number;
  /** The address delivery used (Final-Recipient). */
  readonly address: string;
  readonly fact: DeliveryFact;
  readonly classification: Classification;
  /** The host that answered (Remote-MTA), for SMTP/LMTP replies. */
  readonly remoteMta: string | null;
  /** "smtp:mx.example.test[192.0.2.1]:25", "maildir", "dns" … */
  readonly nextHop: string | null;
  readonly at: number;
  /** Delivered to a next hop that took the DSN parameters: it reports success itself. */
  readonly dsnPassedOn: boolean;
  /** Delivered (or tried) into a local mailbox. */
  readonly local: boolean;
}
