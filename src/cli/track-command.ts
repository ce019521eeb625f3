/**
 * `postern track`: where is a message, and why did it bounce? Finds messages by sender,
 * recipient, Message-ID header, queue id, next hop, outcome and time, and prints each with its
 * recipients (state and last reply) and its timeline from the connection to the final outcome.
 * Refusals before queueing (RCPT rejected) are listed too: they have no queue id.
 */
import type { Command } from 'commander';
import { parseDuration } from '../config/units.js';
import { SEARCH_OUTCOMES, type SearchOutcome, type TrackingSearch } from '../store/tracking-record.js';
import { formatEvent, formatMessage, withAdmin } from './queue-command.js';

interface TrackOpts {
  config?: string;
  from?: string;
  to?: string;
  messageId?: string;
  id?: string;
  nextHop?: string;
  outcome?: string;
  since?: string;
  until?: string;
  limit: string;
  json?: boolean;
}

/** "2h" (ago), an ISO date, or ms since the epoch. */
function timeArg(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d{4}-\d\d-\d\d/.test(value)) return Date.parse(value);
  if (/^\d{12,}$/.test(value)) return Number(value);
  return now - parseDuration(value);
}

export function registerTrackCommand(program: Command): void {
  program
    .command('track')
    .description('find messages and show what happened to them')
    .option('-c, --config <file>', 'configuration file (YAML)')
    .option('--from <sender>', 'envelope sender ("" for the null sender)')
    .option('--to <recipient>', 'envelope recipient')
    .option('--message-id <id>', 'Message-ID header, with or without <>')
    .option('--id <queue-id>', 'queue id')
    .option('--next-hop <host>', 'part of a next hop ("mx1.example.test", "192.0.2.1")')
    .option('--outcome <outcome>', SEARCH_OUTCOMES.join(' | '))
    .option('--since <when>', 'received since: 2h (ago), 2026-11-28T08:00Z')
    .option('--until <when>', 'received before')
    .option('--limit <n>', 'at most this many messages', '20')
    .option('--json', 'as JSON')
    .action((opts: TrackOpts) =>
      withAdmin(opts.config, async (client) => {
        if (opts.outcome !== undefined && !(SEARCH_OUTCOMES as readonly string[]).includes(opts.outcome)) {
          process.stderr.write(`postern: --outcome: one of ${SEARCH_OUTCOMES.join(', ')}\n`);
          return 2;
        }
        const now = Date.now();
        const search: TrackingSearch = {
          sender: opts.from, recipient: opts.to, messageId: opts.messageId, queueId: opts.id, nextHop: opts.nextHop,
          outcome: opts.outcome as SearchOutcome | undefined,
          since: timeArg(opts.since, now), until: timeArg(opts.until, now), limit: Number(opts.limit),
        };
        if (Object.values(search).filter((v) => v !== undefined).length <= 1) {
          process.stderr.write('postern: track: say what to look for (--from, --to, --message-id, --id, --next-hop, --outcome, --since)\n');
          return 2;
        }
        const result = await client.track(search);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          return 0;
        }
        if (result.messages.length === 0 && result.refusals.length === 0) {
          process.stdout.write('No message found.\n');
          return 1;
        }
        for (const m of result.messages) process.stdout.write(`${formatMessage(m)}\n`);
        if (result.refusals.length > 0) {
          process.stdout.write('Refused before queueing:\n');
          for (const e of result.refusals) process.stdout.write(`  ${formatEvent(e)}\n`);
        }
        process.stdout.write(`${result.messages.length} message(s)${result.refusals.length > 0 ? `, ${result.refusals.length} refusal(s)` : ''}\n`);
        return 0;
      }));
}
