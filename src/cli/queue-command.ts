/**
 * `postern queue …`: list, show, retry, hold, release, bounce, delete. Through the running
 * gateway's admin API when `admin.token` is configured and the gateway answers; on the store
 * directly otherwise (the gateway stopped). Either way the same QueueAdmin service does the work.
 * Bulk operations show a progress bar on a terminal and one plain line per message otherwise.
 */
import type { Command } from 'commander';
import type { PosternConfig } from '../config/config-schema.js';
import { parseDuration } from '../config/units.js';
import { AdminApiError, HttpAdminClient, LocalAdminClient, type AdminClient } from '../admin/admin-client.js';
import { QueueAdmin, type QueueAction } from '../admin/queue-admin.js';
import { adminBouncerFor } from '../delivery/admin-bounce.js';
import { silentLogger } from '../observability/logger.js';
import type { AdminChange } from '../store/admin-change.js';
import type { MessageState } from '../store/queue-types.js';
import type { TrackingEvent } from '../store/tracking-record.js';
import { openSqliteQueueStore } from '../store/sqlite/sqlite-queue-store.js';
import type { TrackedMessage, TrackedMessageWithTimeline } from '../tracking/tracking-query.js';
import { loadCliConfig } from './load-cli-config.js';

/** The admin API of the running gateway, or the store itself when none answers. */
export async function openAdminClient(config: PosternConfig): Promise<AdminClient> {
  const { token, listen } = config.admin;
  if (token) {
    const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
    const client = new HttpAdminClient(`http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`, token);
    try {
      await client.status();
      return client;
    } catch (err) {
      if (err instanceof AdminApiError) throw err;
      process.stderr.write(`postern: the admin API at ${host}:${listen.port} does not answer; working on the queue store directly\n`);
    }
  }
  const store = openSqliteQueueStore({ directory: config.store.path, minFreeBytes: 0 });
  const admin = new QueueAdmin({ store, bouncer: adminBouncerFor(config, store, silentLogger()) });
  return new LocalAdminClient(`store ${config.store.path}`, admin, () => store.close());
}

/** Runs `body` with an admin client for the command's --config; errors become "postern: …" and exit 1. */
export async function withAdmin(configFile: string | undefined, body: (client: AdminClient) => Promise<number | void>): Promise<void> {
  const config = loadCliConfig(configFile);
  let client: AdminClient | null = null;
  try {
    client = await openAdminClient(config);
    const code = await body(client);
    if (typeof code === 'number') process.exitCode = code;
  } catch (err) {
    process.stderr.write(`postern: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await client?.close();
  }
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** One line of a timeline: time, kind, outcome, who, the reply and the facts that matter. */
export function formatEvent(e: TrackingEvent): string {
  const d = e.detail;
  const parts: string[] = [formatTime(e.at), e.kind.padEnd(10), (e.outcome ?? '').padEnd(9)];
  switch (e.kind) {
    case 'connection':
      parts.push(`client ${String(d.client)} group ${String(d.senderGroup ?? '-')} policy ${String(d.policy ?? '-')}: ${e.reply ?? ''}`);
      break;
    case 'rcpt':
      parts.push(`<${e.sender ?? ''}> -> ${e.recipient ?? ''}: ${e.reply ?? ''}`);
      break;
    case 'accepted':
      parts.push(`queue id ${e.queueId ?? ''}, ${String(d.size)} bytes, from <${e.sender ?? ''}>, sender group ${String(d.senderGroup ?? '-')}, policy ${String(d.policy ?? '-')}${d.messageId ? `, Message-ID ${String(d.messageId)}` : ''}`);
      break;
    case 'attempt':
      parts.push(`${e.recipient ?? ''} via ${e.nextHop ?? '-'}: ${e.reply ?? ''}`);
      break;
    case 'deferred':
      parts.push(`${e.recipient ?? ''}: ${e.reply ?? ''}${typeof d.nextAttemptAt === 'number' ? ` (next retry ${formatTime(d.nextAttemptAt)})` : ''}`);
      break;
    case 'delivered':
    case 'bounced':
    case 'expired':
      parts.push(`${e.recipient ?? ''}: ${e.reply ?? ''}`);
      break;
    case 'dsn':
      parts.push(`DSN to <${e.recipient ?? ''}> queued as ${String(d.dsnId)}`);
      break;
    default:
      parts.push(`by ${String(d.by ?? 'admin')}${Array.isArray(d.recipients) && d.recipients.length > 0 ? `: ${d.recipients.join(', ')}` : ''}`);
  }
  return parts.join('  ').trimEnd();
}

/** `queue show` and `track`: envelope, recipients with their state and last reply, the timeline. */
export function formatMessage(m: TrackedMessageWithTimeline): string {
  const lines = [
    `${m.id}  ${m.summary}`,
    `  from       <${m.sender}>`,
    `  received   ${formatTime(m.receivedAt)} from ${m.client.ip} (${m.client.helo || '-'}), sender group ${m.client.senderGroup ?? '-'}, policy ${m.client.policy ?? '-'}`,
    `  size       ${m.size} bytes${m.messageId ? `, Message-ID ${m.messageId}` : ''}${m.origin !== 'received' ? `, generated (${m.origin})` : ''}`,
  ];
  if (m.nextAttemptAt !== null) lines.push(`  next try   ${formatTime(m.nextAttemptAt)}`);
  lines.push('  recipients');
  for (const r of m.recipients) {
    lines.push(`    ${r.address}  ${r.display}${r.attempts > 0 ? `, ${r.attempts} attempt(s)` : ''}${r.lastReply ? `: ${r.lastReply}` : ''}`);
  }
  lines.push('  timeline');
  for (const e of m.timeline) lines.push(`    ${formatEvent(e)}`);
  return `${lines.join('\n')}\n`;
}

function printList(messages: readonly TrackedMessage[], now: number): void {
  if (messages.length === 0) {
    process.stdout.write('Queue is empty.\n');
    return;
  }
  process.stdout.write(`${'QUEUE ID'.padEnd(16)} ${'STATE'.padEnd(7)} ${'SIZE'.padStart(9)} ${'ARRIVED (UTC)'.padEnd(20)} ${'AGE'.padStart(5)} SENDER -> RECIPIENTS\n`);
  for (const m of messages) {
    const arrived = new Date(m.receivedAt).toISOString().slice(0, 19).replace('T', ' ');
    const rcpts = m.recipients.map((r) => `${r.address}${r.display === 'queued' ? '' : ` (${r.display})`}`).join(', ');
    process.stdout.write(`${m.id.padEnd(16)} ${m.state.padEnd(7)} ${String(m.size).padStart(9)} ${arrived.padEnd(20)} ${formatAge(now - m.receivedAt).padStart(5)} <${m.sender}> -> ${rcpts}\n`);
  }
  process.stdout.write(`${messages.length} message(s)\n`);
}

const RESULT_WORDS: Readonly<Record<AdminChange, string>> = {
  changed: 'done',
  'not-found': 'no such message',
  busy: 'being delivered right now; try again',
  'wrong-state': 'not in a state this applies to',
};

/** Progress on a terminal: one redrawn bar on stderr. Otherwise one line per message on stdout. */
export class Progress {
  private readonly tty: boolean;
  constructor(private readonly label: string, private readonly total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.tty = stream.isTTY === true && total > 1;
    this.stream = stream;
  }

  private readonly stream: NodeJS.WriteStream;

  step(done: number, id: string, result: AdminChange): void {
    if (!this.tty) {
      process.stdout.write(`${id}: ${this.label} ${RESULT_WORDS[result]}\n`);
      return;
    }
    const width = 30;
    const filled = Math.round((done / this.total) * width);
    this.stream.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total}`);
    if (done === this.total) this.stream.write('\n');
  }
}

async function runAction(client: AdminClient, action: QueueAction, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) {
    process.stdout.write(`Nothing to ${action}.\n`);
    return 0;
  }
  const progress = new Progress(action, ids.length);
  const tally = new Map<AdminChange, number>();
  let done = 0;
  for (const id of ids) {
    const result = await client.act(action, id);
    tally.set(result, (tally.get(result) ?? 0) + 1);
    progress.step(++done, id, result);
  }
  if (ids.length > 1) {
    process.stdout.write(`${action}: ${[...tally].map(([r, n]) => `${n} ${RESULT_WORDS[r]}`).join(', ')}\n`);
  }
  return (tally.get('changed') ?? 0) === ids.length ? 0 : 1;
}

interface ActionOpts {
  config?: string;
  domain?: string;
  all?: boolean;
}

function registerAction(queue: Command, action: QueueAction, description: string, bulk: boolean): void {
  const cmd = queue
    .command(`${action} [ids...]`)
    .description(description)
    .option('-c, --config <file>', 'configuration file (YAML)');
  if (bulk) {
    cmd.option('--domain <domain>', 'every message with a recipient in this domain').option('--all', 'every message');
  }
  cmd.action((ids: string[], opts: ActionOpts) =>
    withAdmin(opts.config, async (client) => {
      const targets = ids.length > 0 ? ids : await client.targets(action, { domain: opts.domain, all: opts.all });
      if (ids.length === 0 && opts.domain === undefined && opts.all !== true) {
        process.stderr.write(`postern: queue ${action}: give queue ids${bulk ? ', --domain D or --all' : ''}\n`);
        return 2;
      }
      return runAction(client, action, targets);
    }));
}

export function registerQueueCommand(program: Command): void {
  const queue = program.command('queue').description('inspect and manage the queue');
  queue
    .command('ls')
    .description('list messages, oldest first')
    .option('-c, --config <file>', 'configuration file (YAML)')
    .option('--state <state>', 'queued | held | done')
    .option('--domain <domain>', 'only messages with a recipient in this domain')
    .option('--older-than <age>', 'only messages received at least this long ago (90s, 15m, 2h, 1d)')
    .option('--limit <n>', 'at most this many', '1000')
    .option('--json', 'one JSON object per line')
    .action((opts: { config?: string; state?: string; domain?: string; olderThan?: string; limit: string; json?: boolean }) =>
      withAdmin(opts.config, async (client) => {
        if (opts.state !== undefined && !['queued', 'held', 'done'].includes(opts.state)) {
          process.stderr.write('postern: --state: queued, held or done\n');
          return 2;
        }
        const messages = await client.list({
          state: opts.state as MessageState | undefined,
          domain: opts.domain,
          olderThanMs: opts.olderThan === undefined ? undefined : parseDuration(opts.olderThan),
          limit: Number(opts.limit),
        });
        if (opts.json) {
          for (const m of messages) process.stdout.write(`${JSON.stringify(m)}\n`);
          return 0;
        }
        printList(messages, Date.now());
        return 0;
      }));
  queue
    .command('show <id>')
    .description('envelope, per-recipient state and the timeline of one message')
    .option('-c, --config <file>', 'configuration file (YAML)')
    .option('--json', 'as JSON')
    .action((id: string, opts: { config?: string; json?: boolean }) =>
      withAdmin(opts.config, async (client) => {
        const m = await client.show(id);
        if (m === null) {
          process.stderr.write(`postern: no message ${id}\n`);
          return 1;
        }
        process.stdout.write(opts.json ? `${JSON.stringify(m, null, 2)}\n` : formatMessage(m));
        return 0;
      }));
  registerAction(queue, 'retry', 'deliver now: IDs, --domain D or --all', true);
  registerAction(queue, 'hold', 'keep messages from delivery until released', true);
  registerAction(queue, 'release', 'let held messages be delivered again (at once)', true);
  registerAction(queue, 'bounce', 'hard-bounce messages now, with a DSN to the sender', true);
  registerAction(queue, 'delete', 'remove messages without a DSN', true);
}
