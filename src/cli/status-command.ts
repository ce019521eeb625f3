/** `postern status`: connections, rates per minute, queue sizes, soft and hard bounces. */
import type { Command } from 'commander';
import { withAdmin } from './queue-command.js';

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('connections, rates per minute, queue sizes, bounce counts')
    .option('-c, --config <file>', 'configuration file (YAML)')
    .option('--json', 'as JSON')
    .action((opts: { config?: string; json?: boolean }) =>
      withAdmin(opts.config, async (client) => {
        const s = await client.status();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
          return 0;
        }
        const r = s.rates;
        process.stdout.write([
          `source       ${client.via}`,
          `connections  ${s.connections === null ? '- (gateway not running)' : `${s.connections} open`}`,
          `per minute   ${r.connections} connections, ${r.accepted} accepted, ${r.delivered} delivered, ${r.soft} soft, ${r.hard} hard bounces (last ${Math.round(r.windowMs / 60_000)} min)`,
          `queue        ${s.queue.queued} queued (${s.queue.deferred} deferred), ${s.queue.held} held, ${s.queue.done} finished and kept for tracking`,
          `last 24 h    ${s.bounces24h.delivered} delivered, ${s.bounces24h.soft} soft bounces, ${s.bounces24h.hard} hard bounces`,
        ].join('\n') + '\n');
        return 0;
      }));
}
