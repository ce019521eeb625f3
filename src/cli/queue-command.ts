/** `postern queue ls`: what is queued, oldest first. */
import type { Command } from 'commander';
import { openSqliteQueueStore } from '../store/sqlite/sqlite-queue-store.js';
import type { MessageState } from '../store/queue-types.js';
import { loadCliConfig } from './load-cli-config.js';

export function registerQueueCommand(program: Command): void {
  const queue = program.command('queue').description('inspect and manage the queue');
  queue
    .command('ls')
    .description('list queued messages')
    .option('-c, --config <file>', 'configuration file (YAML)')
    .option('--state <state>', 'queued | held | done')
    .option('--domain <domain>', 'only messages with a recipient in this domain')
    .option('--json', 'one JSON object per line')
    .action((opts: { config?: string; state?: string; domain?: string; json?: boolean }) => {
      const config = loadCliConfig(opts.config);
      const store = openSqliteQueueStore({ directory: config.store.path, minFreeBytes: 0 });
      try {
        const messages = store.listMessages({
          state: (opts.state as MessageState | undefined) ?? undefined,
          domain: opts.domain,
        });
        if (opts.json) {
          for (const m of messages) process.stdout.write(`${JSON.stringify(m)}\n`);
          return;
        }
        if (messages.length === 0) {
          process.stdout.write('Queue is empty.\n');
          return;
        }
        process.stdout.write(`${'QUEUE ID'.padEnd(16)} ${'STATE'.padEnd(7)} ${'SIZE'.padStart(9)} ${'ARRIVED (UTC)'.padEnd(20)} SENDER -> RECIPIENTS\n`);
        for (const m of messages) {
          const arrived = new Date(m.envelope.receivedAt).toISOString().slice(0, 19).replace('T', ' ');
          const rcpts = m.recipients.map((r) => `${r.address}${r.state === 'queued' ? '' : ` (${r.state})`}`).join(', ');
          process.stdout.write(`${m.id.padEnd(16)} ${m.state.padEnd(7)} ${String(m.size).padStart(9)} ${arrived.padEnd(20)} <${m.envelope.sender}> -> ${rcpts}\n`);
        }
        process.stdout.write(`${messages.length} message(s)\n`);
      } finally {
        void store.close();
      }
    });
}
