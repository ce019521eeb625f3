/**
 * What the receiving side tells an observer (metrics) as it works: connections opening and
 * closing, and every reply it sends with the stage it answered. Optional, synchronous, and never
 * able to change a decision. Tracking records go to the store instead (Intake.replied).
 */
export interface SessionObserver {
  connectionOpened?(listener: string): void;
  connectionClosed?(listener: string): void;
  /** `stage` is the command answered ("RCPT", "DATA", …) or "CONNECT" for the greeting. */
  replied?(stage: string, code: number): void;
}
