/** Session ids: unique per process run and cheap (a random prefix and a counter, base 36). */
import { randomBytes } from 'node:crypto';

const prefix = randomBytes(3).toString('hex');
let counter = 0;

export function nextSessionId(): string {
  counter++;
  return `${prefix}${counter.toString(36).padStart(5, '0')}`;
}
