/**
 * A real gateway in this process for tests: own temp directory for the queue, an ephemeral
 * loopback port, silent logs unless POSTERN_TEST_LOG is set.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load-config.js';
import type { PosternConfig } from '../../src/config/config-schema.js';
import { Gateway, type GatewayOptions } from '../../src/gateway.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import type { PolicyEngine } from '../../src/policy/session-policy.js';
import type { Authenticator } from '../../src/server/authenticator.js';

export interface TestGateway {
  readonly gateway: Gateway;
  readonly port: number;
  /** Port of each listener by name. */
  readonly ports: Readonly<Record<string, number>>;
  readonly dir: string;
  readonly config: PosternConfig;
  stop(): Promise<void>;
}

/** `yaml` is merged below a default test config (store path and listener filled in). */
/** A loopback port nothing listens on: DNS queries there fail at once, and never leave the machine. */
export const NO_DNS = '127.0.0.1:9';

export interface TestGatewayOptions {
  readonly policy?: PolicyEngine;
  /** Directory for the queue (default: a new temp directory, removed at stop). */
  readonly dir?: string;
  /** store.min_free_space (default 0). */
  readonly minFreeSpace?: string;
  readonly authenticator?: Authenticator;
  /** Delivery is off unless asked for: true, or the delivery's test clock and randomness. */
  readonly delivery?: GatewayOptions['delivery'] | true;
}

export async function startTestGateway(yaml = '', opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'postern-gw-'));
  const text = [
    'hostname: mx.test',
    `store: { path: ${JSON.stringify(join(dir, 'queue'))}, min_free_space: ${opts.minFreeSpace ?? 0} }`,
    yaml.includes('listeners:') ? '' : 'listeners: [ { name: inbound, listen: "127.0.0.1:0" } ]',
    // Tests never ask the machine's resolver (it is not on loopback): without a test DNS server,
    // lookups go to a closed loopback port and fail temporarily.
    /^dns:/m.test(yaml) ? '' : `dns: { servers: ["${NO_DNS}"] }`,
    // Local Maildirs beside the queue: <dir>/mail/<domain>/<local-part>.
    /^mailboxes:/m.test(yaml) ? '' : `mailboxes: { path: ${JSON.stringify(join(dir, 'mail'))} }`,
    yaml,
  ].join('\n');
  const config = parseConfigText(text, 'test.yaml', { baseDir: dir });
  const log = process.env.POSTERN_TEST_LOG ? createLogger('debug', 2) : silentLogger();
  const delivery = opts.delivery === true ? undefined : (opts.delivery ?? false);
  const clock = delivery ? delivery.clock : undefined;
  const gateway = await Gateway.start({
    config, log, policy: opts.policy, authenticator: opts.authenticator, delivery,
    ...(clock ? { clock: () => clock.now() } : {}),
  });
  return {
    gateway,
    port: gateway.bound[0].port,
    ports: Object.fromEntries(gateway.bound.map((b) => [b.name, b.port])),
    dir,
    config,
    async stop() {
      await gateway.stop(1000);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
