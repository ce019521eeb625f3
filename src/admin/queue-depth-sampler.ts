/**
 * The queue depth over time, for the overview chart: the store's counts sampled every
 * `intervalMs` into a bounded ring (12 hours at the default 15 s). In memory: a restart starts
 * the chart afresh, the queue itself is in the store.
 */
export interface DepthSample {
  readonly at: number;
  readonly queued: number;
  readonly held: number;
}

export class QueueDepthSampler {
  private readonly samples: DepthSample[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly counts: () => { queued: number; held: number },
    private readonly clock: () => number = Date.now,
    private readonly intervalMs = 15_000,
    private readonly maxSamples = 2880,
  ) {}

  start(): void {
    if (this.timer !== null) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  sample(): void {
    try {
      const c = this.counts();
      this.samples.push({ at: this.clock(), queued: c.queued, held: c.held });
      if (this.samples.length > this.maxSamples) this.samples.splice(0, this.samples.length - this.maxSamples);
    } catch {
      // The store is closing.
    }
  }

  since(at: number): DepthSample[] {
    return this.samples.filter((s) => s.at >= at);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
