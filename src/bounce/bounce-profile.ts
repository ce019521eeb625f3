/**
 * Bounce profiles: how long a soft bounce is retried, how often, when the sender hears about the
 * delay, and when the soft bounce turns hard — by default and per destination domain, as
 * commercial gateways configure them (first retry after 60 s, doubling up to 1 h, at most 100
 * retries or 72 h in queue, one delay warning after 4 h).
 */
import type { BounceProfileConfig, BounceProfilesConfig } from '../config/delivery-schema.js';

export interface BounceProfile {
  /** The profile's name: "default" or the domain it was configured for. */
  readonly name: string;
  readonly initialRetryMs: number;
  readonly backoffFactor: number;
  readonly maxRetryIntervalMs: number;
  /** Retries after the first attempt. */
  readonly maxRetries: number;
  readonly maxTimeInQueueMs: number;
  readonly delayWarningMs: number;
  readonly delayWarnings: number;
  readonly sendHardBounceDsn: boolean;
  readonly sendDelayDsn: boolean;
  /** Fraction each interval varies by, either way. */
  readonly jitter: number;
}

export function bounceProfileFromConfig(name: string, c: BounceProfileConfig): BounceProfile {
  return {
    name,
    initialRetryMs: c.initial_retry,
    backoffFactor: c.backoff_factor,
    maxRetryIntervalMs: c.max_retry_interval,
    maxRetries: c.max_retries,
    maxTimeInQueueMs: c.max_time_in_queue,
    delayWarningMs: c.delay_warning,
    delayWarnings: c.delay_warnings,
    sendHardBounceDsn: c.send_hard_bounce_dsn,
    sendDelayDsn: c.send_delay_dsn,
    jitter: c.jitter,
  };
}

/** The profiles of a config, looked up by destination domain. */
export class BounceProfiles {
  readonly default: BounceProfile;
  private readonly byDomain: ReadonlyMap<string, BounceProfile>;

  constructor(config: BounceProfilesConfig) {
    this.default = bounceProfileFromConfig('default', config.default);
    this.byDomain = new Map(Object.entries(config.domains).map(([d, p]) => [d, bounceProfileFromConfig(d, p)]));
  }

  /** The profile of `domain` (case-insensitive), else of its closest parent domain, else the default. */
  forDomain(domain: string): BounceProfile {
    let d = domain.toLowerCase();
    for (;;) {
      const p = this.byDomain.get(d);
      if (p) return p;
      const dot = d.indexOf('.');
      if (dot < 0) return this.default;
      d = d.slice(dot + 1);
    }
  }
}
