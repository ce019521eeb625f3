/**
 * The sending side assembled from the config: router, MX lookups, connection pool, local Maildir
 * transport, outcome recorder and scheduler. The gateway starts it after the listeners and stops
 * it (draining runs in flight up to the grace, releasing leases) before the store closes.
 */
import type { Logger } from 'pino';
import { BounceProfiles } from '../bounce/bounce-profile.js';
import type { PosternConfig } from '../config/config-schema.js';
import type { QueueStore } from '../store/queue-store.js';
import { ConnectionPool } from './connection-pool.js';
import { systemClock, type DeliveryClock } from './delivery-clock.js';
import { MaildirDeliverer, type LocalTransport } from './maildir-deliverer.js';
import { MessageDelivery } from './message-delivery.js';
import type { MxLookups } from './mx-lookup.js';
import { OutcomeRecorder } from './outcome-recorder.js';
import { Router } from './router.js';
import { DeliveryScheduler } from './scheduler.js';
import { DkimSigner, loadDkimKeys, type DkimSigningKey } from './dkim-signer.js';
import type { ClientTimeouts } from './smtp-connector.js';

export interface DeliveryServiceOptions {
  readonly config: PosternConfig;
  readonly store: QueueStore;
  readonly dns: MxLookups;
  readonly log: Logger;
  /** Where local domains' Maildirs live: <path>/<domain>/<local-part>. */
  readonly mailboxPath: string;
  readonly clock?: DeliveryClock;
  /** For MX shuffling and retry jitter. */
  readonly random?: () => number;
  /** The local mailbox transport; default: plain Maildir under `mailboxPath`. */
  readonly local?: LocalTransport;
  /** Our own listening addresses (a next hop among them is a mail loop). */
  readonly selfAddresses?: readonly { readonly host: string; readonly port: number }[];
  /** The scheduler's worker name in leases. */
  readonly worker?: string;
  /** DKIM signing keys, loaded (`loadDkimKeys`); default: read from `dkim.sign` now. */
  readonly dkimKeys?: readonly DkimSigningKey[];
}

export function clientTimeouts(t: PosternConfig['delivery']['timeouts']): ClientTimeouts {
  return {
    connect: t.connect,
    greeting: t.greeting,
    helo: t.helo,
    starttls: t.starttls,
    mail: t.mail,
    rcpt: t.rcpt,
    'data-init': t.data_init,
    'data-block': t.data_block,
    'data-term': t.data_term,
    rset: t.rset,
    quit: t.quit,
  };
}

export class DeliveryService {
  readonly scheduler: DeliveryScheduler;
  readonly pool: ConnectionPool;
  readonly recorder: OutcomeRecorder;
  readonly router: Router;
  private stopping: Promise<void> | null = null;

  constructor(opts: DeliveryServiceOptions) {
    const { config, store, log } = opts;
    const d = config.delivery;
    const clock = opts.clock ?? systemClock;
    const random = opts.random ?? Math.random;
    const postmaster = config.postmaster ?? `postmaster@${config.hostname}`;
    const lmtp = config.mailboxes.transport === 'lmtp' ? config.mailboxes.lmtp_next_hop : undefined;
    this.router = new Router({
      localDomains: config.domains.local,
      relay: config.domains.relay,
      postmaster,
      hostname: config.hostname,
      ...(lmtp?.kind === 'tcp'
        ? { localNextHop: { protocol: 'lmtp', host: lmtp.host, port: lmtp.port, tls: 'none', url: lmtp.url } }
        : {}),
    });
    this.pool = new ConnectionPool({
      connector: { heloName: d.helo_name ?? config.hostname, timeouts: clientTimeouts(d.timeouts), tlsVerify: d.tls_verify, log },
      maxPerDestination: d.max_connections_per_destination,
      maxMessagesPerConnection: d.max_messages_per_connection,
      idleMs: d.connection_idle_time,
      log,
    });
    this.recorder = new OutcomeRecorder({
      store,
      profiles: new BounceProfiles(config.bounce_profiles),
      softBounce: config.soft_bounce,
      postmaster,
      hostname: config.hostname,
      clock,
      random,
      maxReturnedSize: d.dsn_max_returned_size,
      maxHeaderBytes: config.limits.max_header_size,
      log,
    });
    const delivery = new MessageDelivery({
      store,
      router: this.router,
      dns: opts.dns,
      pool: this.pool,
      local: opts.local ?? new MaildirDeliverer({ root: opts.mailboxPath, hostname: config.hostname }),
      recorder: this.recorder,
      clock,
      random,
      smtpPort: d.smtp_port,
      mxTls: d.tls,
      selfAddresses: opts.selfAddresses ?? [],
      log,
      // A missing or unusable key file stops the start with its config path.
      signer: config.dkim.sign.length === 0
        ? null
        : new DkimSigner(opts.dkimKeys ?? loadDkimKeys(config.dkim.sign), { clock: () => clock.now(), maxHeaderBytes: config.limits.max_header_size }),
    });
    this.scheduler = new DeliveryScheduler({
      store,
      deliver: (lease, signal, slotFree) => delivery.deliver(lease, signal, slotFree),
      concurrency: d.concurrency,
      leaseMs: d.lease_time,
      clock,
      log,
      ...(opts.worker ? { worker: opts.worker } : {}),
    });
  }

  start(): void {
    this.scheduler.start();
  }

  /** Lets runs in flight finish for up to `graceMs`, then cuts them short; closes idle connections. */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= (async () => {
      await this.scheduler.stop(graceMs);
      await this.pool.close();
    })();
    return this.stopping;
  }
}
