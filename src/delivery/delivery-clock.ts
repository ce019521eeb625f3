/**
 * The queue's notion of time, injected: the scheduler asks it what time it is and sets its
 * wake-up timer with it, so tests move time forward (hours of retries in milliseconds) instead
 * of sleeping. Network timeouts are not queue time and use the process's timers.
 */

/** Opaque: whatever the clock gives back from setTimer. */
export type TimerHandle = object;

export interface DeliveryClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once, `ms` from now (in this clock's time). */
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** Wall-clock time and Node's timers (unref'd: a pending retry does not keep the process alive). */
export const systemClock: DeliveryClock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    // setTimeout's limit is 2^31-1 ms; a later wake-up re-arms itself.
    const t = setTimeout(fn, Math.min(Math.max(0, ms), 2_147_483_647));
    t.unref();
    return t;
  },
  clearTimer(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
