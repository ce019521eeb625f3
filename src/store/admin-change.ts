/**
 * What an administrator's change to one queued message came to. A message a worker holds a live
 * lease on is 'busy': changing it under the worker would be overwritten by the worker's report
 * (or lost with it); try again when the delivery run is over.
 */
export type AdminChange =
  | 'changed'
  /** No such message. */
  | 'not-found'
  /** A delivery run holds it now. */
  | 'busy'
  /** Not in a state this change applies to (e.g. retry of a held or finished message). */
  | 'wrong-state';
