/** RFC 3461 parameter values, shared by the grammar and the store's envelope. */

/** RFC 3461 §4.1 NOTIFY: NEVER, or any of SUCCESS / FAILURE / DELAY. */
export type NotifyParam = 'NEVER' | ReadonlyArray<'SUCCESS' | 'FAILURE' | 'DELAY'>;

/** RFC 3461 §4.2 ORCPT: addr-type and the xtext-decoded original address. */
export interface OriginalRecipient {
  readonly addrType: string;
  readonly address: string;
}
