/**
 * The composition root: the one place that picks implementations and wires the layers
 * (config → store → policy → listeners). `postern start` and the end-to-end tests use it.
 */
import { readFileSync } from 'node:fs';
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
import { loadDkimKeys } from './delivery/dkim-signer.js';
import type { DeliveryClock } from './delivery/delivery-clock.js';
import { openLocalMailboxes, type LocalMailboxes } from './local-mailboxes.js';
import { PosternMetrics } from './observability/metrics.js';
import { AdminServer } from './admin/http-server.js';
import { QueueAdmin } from './admin/queue-admin.js';
import { adminBouncerFor } from './delivery/admin-bounce.js';
import { TrackingRetention } from './tracking/tracking-retention.js';

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
  /** Local mailboxes: the users file (null without mailboxes.users_file), Maildir housekeeping. */
  mailboxes: LocalMailboxes | null = null;

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
    /** Operations: metrics, the admin API (null without admin.token), tracking retention. */
    readonly ops: { readonly metrics: PosternMetrics; readonly admin: AdminServer | null; readonly retention: TrackingRetention } | null = null,
  ) {}

  /** SIGHUP: reload what can change without a restart (the TLS certificate, the users file). */
  reload(): void {
    this.log.info('reload');
    this.tlsCredentials?.load();
    void this.mailboxes?.reload();
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const { config } = opts;
    const log = opts.log ?? createLogger(config.logging.level);
    const clock = opts.clock ?? Date.now;
    let depth: () => Record<string, number> = () => ({});
    let commits: () => { batches: number; messages: number } | null = () => null;
    const metrics = new PosternMetrics(() => depth(), () => commits());
    const dns = new DnsResolver({
      servers: config.dns.servers, timeoutMs: config.timeouts.dns, cacheMs: config.dns.cache_ttl, clock,
      onLookup: (type, result) => metrics.dnsLookup(type, result),
    });
    // DKIM keys first: an unusable key file stops the start before anything is opened.
    const dkimKeys = loadDkimKeys(config.dkim.sign);
    // The users file (when mailboxes.users_file is set): RCPT verdicts, SMTP AUTH, local delivery.
    const mailboxes = await openLocalMailboxes(config, log);
    const store = openSqliteQueueStore({ directory: config.store.path, minFreeBytes: config.store.min_free_space, clock });
    depth = () => store.counts();
    commits = () => {
      const stats = store.stats();
      return { batches: stats.commitBatches, messages: stats.committedMessages };
    };
    store.onTracked((events) => metrics.tracked(events));
    const policy = opts.policy ?? new ConfiguredPolicyEngine({ config, dns, clock, ...(mailboxes.directory ? { directory: mailboxes.directory } : {}) });
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
          authenticator: opts.authenticator ?? mailboxes.authenticator,
          authFailureDelayMs: config.auth.failure_delay,
          maxAuthFailures: config.auth.max_failures,
          observer: metrics,
          senderLoginMatch: l.sender_login_match,
        });
        const addr = await listener.start();
        listeners.push(listener);
        bound.push({ name: l.name, host: addr.address, port: addr.port });
      }
    } catch (err) {
      for (const l of listeners) await l.shutdown(0);
      await store.close();
      await mailboxes.close();
      throw err;
    }
    // Delivery starts after the listeners; local mailboxes are <mailboxes.path>/<domain>/<local-part>.
    let delivery: DeliveryService | null = null;
    if (config.delivery.enabled && opts.delivery !== false) {
      delivery = new DeliveryService({
        config, store, dns, log,
        mailboxPath: config.mailboxes.path,
        ...(mailboxes.transport ? { local: mailboxes.transport } : {}),
        selfAddresses: bound,
        dkimKeys,
        ...(opts.delivery ?? {}),
      });
      delivery.start();
      mailboxes.startHousekeeping();
    }
    // Operations: tracking retention always; the admin API only with a token (no token, no API).
    const retention = new TrackingRetention({
      store, retentionMs: config.admin.retention, clock,
      onPruned: (pruned) => log.info(pruned, 'tracking: pruned'),
      onError: (err) => log.warn({ err }, 'tracking: cannot prune'),
    });
    retention.start();
    let admin: AdminServer | null = null;
    if (config.admin.token) {
      admin = new AdminServer({
        host: config.admin.listen.host,
        port: config.admin.listen.port,
        token: config.admin.token,
        metricsPublic: config.admin.metrics_public,
        admin: new QueueAdmin({ store, clock, bouncer: adminBouncerFor(config, store, log, clock), connections: () => metrics.openConnections }),
        metrics,
        queueCounts: () => store.counts(),
        log,
        clock,
      });
      try {
        await admin.start();
      } catch (err) {
        retention.stop();
        await delivery?.stop(0);
        for (const l of listeners) await l.shutdown(0);
        await store.close();
        await mailboxes.close();
        throw err;
      }
    }
    const gateway = new Gateway(config, store, listeners, bound, log, dns, tlsCredentials, delivery, { metrics, admin, retention });
    gateway.mailboxes = mailboxes;
    return gateway;
  }

  /** Graceful stop: drain sessions (up to the configured grace), then close the store cleanly. */
  stop(graceMs = this.config.shutdown.grace): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ grace_ms: graceMs }, 'shutting down');
      // Sessions drain and deliveries in flight finish (or are cut short, leases released) together.
      await Promise.all([...this.listeners.map((l) => l.shutdown(graceMs)), this.delivery?.stop(graceMs), this.ops?.admin?.stop()]);
      this.ops?.retention.stop();
      await this.mailboxes?.close();
      await this.store.close();
      this.log.info('stopped');
      this.log.flush?.();
    })();
    return this.stopping;
  }
}
