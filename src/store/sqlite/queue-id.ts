/**
 * Queue ids: short, [0-9A-Za-z] only (safe in a 250 reply, a file name and a URL), sortable by
 * the time they were made, and unique across restarts and nodes without coordination.
 *
 * Layout, 15 base62 characters, fixed width so that string order is numeric order
 * (ASCII orders 0-9 < A-Z < a-z, and so does the alphabet below):
 *   8 chars  milliseconds since the epoch (62^8 ms is about 6900 years)
 *   2 chars  a per-process counter within one millisecond (3844 ids per ms before borrowing
 *            the next millisecond), so ids of one process are strictly increasing
 *   5 chars  random (62^5 ≈ 9.2e8), so two nodes making an id in the same millisecond with the
 *            same counter value still differ
 */
import { randomInt } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TIME_DIGITS = 8;
const COUNTER_DIGITS = 2;
const RANDOM_DIGITS = 5;
const COUNTER_LIMIT = 62 ** COUNTER_DIGITS;
const RANDOM_LIMIT = 62 ** RANDOM_DIGITS;

export const QUEUE_ID_LENGTH = TIME_DIGITS + COUNTER_DIGITS + RANDOM_DIGITS;
export const QUEUE_ID_PATTERN = /^[0-9A-Za-z]{15}$/;

function base62(value: number, width: number): string {
  let text = '';
  let rest = Math.floor(value);
  for (let i = 0; i < width; i++) {
    text = ALPHABET[rest % 62] + text;
    rest = Math.floor(rest / 62);
  }
  return text;
}

/** Makes queue ids for one process. Never goes backwards, also when the clock does. */
export class QueueIdGenerator {
  private lastMs = -1;
  private counter = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  next(): string {
    const now = Math.max(0, Math.floor(this.clock()));
    if (now > this.lastMs) {
      this.lastMs = now;
      this.counter = 0;
    } else if (++this.counter >= COUNTER_LIMIT) {
      // More than 3844 ids in one millisecond (or the clock went back): borrow the next one.
      this.lastMs += 1;
      this.counter = 0;
    }
    return (
      base62(this.lastMs, TIME_DIGITS) +
      base62(this.counter, COUNTER_DIGITS) +
      base62(randomInt(RANDOM_LIMIT), RANDOM_DIGITS)
    );
  }
}
