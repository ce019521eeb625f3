/**
 * The composition root: the one place that picks implementations and wires the layers
 * (config → store → policy → listeners). `postern start` and the end-to-end tests use it.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { PosternConfig } from './config/config-schema.js';
import { openSqliteQueueStore } from './store/sqlite/sqlite-queue-store.js';
import type { QueueStore } from './store/queue-store.js';
import type { PolicyEngine } from './policy/session-policy.js';
import { ConfiguredPolicyEngine } from './policy/policy-engine.js';
import { SmtpListener } from './server/smtp-listener.js';
import { createLogger } from './observability/logger.js';
import { DnsResolver } from './dns/dns-resolver.js';
import { TlsCredentials } from './server/tls-credentials.js';
import type { Authenticator } from './server/authenticator.js';
import { DeliveryService } from './delivery/delivery-service.js';
import type { DeliveryClock } from './delivery/delivery-clock.js';

export interface GatewayOptions {
  readonly config: PosternConfig;
  readonly log?: Logger;
  readonly clock?: () => number;
  readonly policy?: PolicyEngine;
  /** Checks SMTP AUTH credentials on listeners with `auth:` set. */
  readonly authenticator?: Authenticator;
  /** false: never deliver (receive-only tests); or the delivery's clock, randomness and worker name. */
  readonly delivery?: false | { readonly clock?: DeliveryClock; readonly random?: () => number; readonly worker?: string };
}

export interface BoundListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export function posternVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export class Gateway {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly config: PosternConfig,
    readonly store: QueueStore,
    private readonly listeners: SmtpListener[],
    readonly bound: readonly BoundListener[],
    readonly log: Logger,
    readonly dns: DnsResolver,
    private readonly tlsCredentials: TlsCredentials | null,
    /** The sending side; null when delivery is off. */
    readonly delivery: DeliveryService | null = null,
  ) {}

  /** SIGHUP: reload what can change without a restart (the TLS certificate). */
  reload(): void {
    this.log.info('reload');
    this.tlsCredentials?.load();
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const { config } = opts;
    const log = opts.log ?? createLogger(config.logging.level);
    const clock = opts.clock ?? Date.now;
    const dns = new DnsResolver({ servers: config.dns.servers, timeoutMs: config.timeouts.dns, cacheMs: config.dns.cache_ttl, clock });
    const store = openSqliteQueueStore({ directory: config.store.path, minFreeBytes: config.store.min_free_space, clock });
    const policy = opts.policy ?? new ConfiguredPolicyEngine({ config, dns, clock });
    const version = posternVersion();
    const listeners: SmtpListener[] = [];
    const bound: BoundListener[] = [];
    const tlsCredentials = config.tls.cert
      ? new TlsCredentials({ cert: config.tls.cert, key: config.tls.key, minVersion: config.tls.min_version, ciphers: config.tls.ciphers }, log)
      : null;
    try {
      for (const l of config.listeners) {
        const listener = new SmtpListener({
          name: l.name,
          host: l.listen.host,
          port: l.listen.port,
          hostname: config.hostname,
          banner: l.banner,
          maxConnections: l.max_connections,
          limits: {
            maxMessageSize: config.limits.max_message_size,
            maxRecipients: config.limits.max_recipients,
            maxErrors: config.limits.max_errors,
            maxCommandsWithoutTransaction: config.limits.max_commands_without_transaction,
            maxMessagesPerConnection: config.limits.max_messages_per_connection,
            maxHeaderLines: config.limits.max_header_lines,
            maxHeaderBytes: config.limits.max_header_size,
          },
          timeouts: {
            commandMs: config.timeouts.command,
            dataBlockMs: config.timeouts.data_block,
            sessionCapMs: config.limits.session_time_cap,
            minDataRate: config.limits.min_data_rate,
          },
          store,
          policy,
          log,
          clock,
          version,
          tls: l.tls,
          tlsCredentials,
          requireTls: l.require_tls,
          auth: l.auth,
          authWithoutTls: l.auth_without_tls,
          authenticator: opts.authenticator ?? null,
          authFailureDelayMs: config.auth.failure_delay,
          maxAuthFailures: config.auth.max_failures,
        });
        const addr = await listener.start();
        listeners.push(listener);
        bound.push({ name: l.name, host: addr.address, port: addr.port });
      }
    } catch (err) {
      for (const l of listeners) await l.shutdown(0);
      await store.close();
      throw err;
    }
    // Delivery starts after the listeners; local Maildirs default to <store dir>/../mail (./var/mail).
    let delivery: DeliveryService | null = null;
    if (config.delivery.enabled && opts.delivery !== false) {
      const mailboxes = (config as unknown as { mailboxes?: { path?: string } }).mailboxes;
      delivery = new DeliveryService({
        config, store, dns, log,
        mailboxPath: mailboxes?.path ?? join(dirname(config.store.path), 'mail'),
        selfAddresses: bound,
        ...(opts.delivery ?? {}),
      });
      delivery.start();
    }
    return new Gateway(config, store, listeners, bound, log, dns, tlsCredentials, delivery);
  }

  /** Graceful stop: drain sessions (up to the configured grace), then close the store cleanly. */
  stop(graceMs = this.config.shutdown.grace): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ grace_ms: graceMs }, 'shutting down');
      // Sessions drain and deliveries in flight finish (or are cut short, leases released) together.
      await Promise.all([...this.listeners.map((l) => l.shutdown(graceMs)), this.delivery?.stop(graceMs)]);
      await this.store.close();
      this.log.info('stopped');
      this.log.flush?.();
    })();
    return this.stopping;
  }
}
