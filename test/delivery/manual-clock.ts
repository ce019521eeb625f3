/** A DeliveryClock whose time moves only when the test says so; due timers fire in order. */
import type { DeliveryClock, TimerHandle } from '../../src/delivery/delivery-clock.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  readonly handle: TimerHandle;
}

export class ManualClock implements DeliveryClock {
  private timers: Timer[] = [];
  private seq = 0;

  constructor(private t: number) {}

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const handle = {};
    this.timers.push({ at: this.t + Math.max(0, ms), seq: this.seq++, fn, handle });
    return handle;
  }

  clearTimer(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.handle !== handle);
  }

  /** The earliest pending timer's time, or null. */
  nextTimerAt(): number | null {
    return this.timers.reduce<number | null>((min, t) => (min === null || t.at < min ? t.at : min), null);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
  }

  /** Moves time to `at` (never backwards). */
  advanceTo(at: number): void {
    this.advance(Math.max(0, at - this.t));
  }
}
