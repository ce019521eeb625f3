/**
 * `postern policy explain --ip A [--helo H] [--from S] [--to R…] [--config FILE]`: which sender
 * group and mail-flow policy a client gets, which checks run with what DNS answers, and the reply
 * each stage would give — through the same engine, resolver and overrides as a running gateway,
 * without sending or receiving anything.
 */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import type { PosternConfig } from '../config/config-schema.js';
import { formatSize } from '../config/units.js';
import { DnsResolver } from '../dns/dns-resolver.js';
import { ConfiguredPolicyEngine } from '../policy/policy-engine.js';
import { silentLogger } from '../observability/logger.js';
import { openLocalMailboxes } from '../local-mailboxes.js';
import { explainPolicy, type Explanation } from '../policy/policy-explain.js';
import type { PolicyStep } from '../policy/policy-trace.js';
import { encodeReply, type Reply } from '../smtp/reply.js';
import { loadCliConfig } from './load-cli-config.js';

function replyText(r: Reply): string {
  return encodeReply(r).trimEnd().split('\r\n').join(' / ');
}

function stepLines(steps: readonly PolicyStep[], indent: string): string[] {
  const out: string[] = [];
  for (const s of steps) {
    out.push(`${indent}${s.check}: ${s.outcome}`);
    for (const d of s.dns) out.push(`${indent}  ${d.query} → ${d.answer}`);
  }
  return out;
}

function limit(value: number | null): string {
  return value === null ? 'none' : String(value);
}

/** The explanation as the text the command prints. */
export function formatExplanation(e: Explanation, listener: string): string {
  const p = e.policy.config;
  const r = e.policy.replies;
  const fromLimits = (own: number | null, effective: string): string => (own === null ? `${effective} (from limits:)` : effective);
  const refusing = p.action === 'reject' || p.action === 'tcprefuse';
  const rows: [string, string][] = refusing ? [['action', p.action]] : [
    ['action', p.action],
    ['trusted (full HELP STATUS)', p.trusted ? 'yes' : 'no'],
    ['banner', p.banner ?? "(the listener's)"],
    ['max message size', `${fromLimits(p.max_message_size, formatSize(e.policy.effective.maxMessageSize))} → ${replyText(r.render('mail.size-exceeded'))}`],
    ['max recipients per message', `${fromLimits(p.max_recipients_per_message, String(e.policy.effective.maxRecipients))} → ${replyText(r.render('rcpt.too-many'))}`],
    ['max messages per connection', `${fromLimits(p.max_messages_per_connection, String(e.policy.effective.maxMessagesPerConnection))} → ${replyText(r.render('session.max-messages'))}`],
    ['max connections per IP', p.max_connections_per_ip === null ? 'none' : `${p.max_connections_per_ip} → ${replyText(r.render('connect.limit'))}`],
    ['messages per hour', p.messages_per_hour === null ? 'none' : `${p.messages_per_hour} → ${replyText(r.render('mail.rate-limited'))}`],
    ['recipients per hour', p.recipients_per_hour === null ? 'none' : `${p.recipients_per_hour} → ${replyText(r.render('rcpt.rate-limited'))}`],
    ['recipients per hour per sender', p.recipients_per_hour_per_sender === null ? 'none' : `${limit(p.recipients_per_hour_per_sender)} → ${replyText(r.render('rcpt.rate-limited'))}`],
    ['reverse DNS', p.reverse_dns === 'none' ? 'none' : `${p.reverse_dns}, checked at ${p.reject_at === 'connect' ? 'the greeting' : 'RCPT'}`],
    ['verify sender domain', p.verify_sender_domain ? 'yes' : 'no'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const out: string[] = [];
  out.push(`Client ${e.ip} on listener ${listener}`);
  out.push('');
  out.push('Sender group (first match wins)');
  out.push(...stepLines(e.groupSteps.map((s) => ({ ...s, check: s.check.replace(/^sender group /, '') })), '  '));
  out.push(e.senderGroup === null
    ? `  → no group matches: policy ${e.policy.name}`
    : `  → ${e.senderGroup} (sender_groups[${e.senderGroupIndex}]): policy ${e.policy.name}`);
  out.push('');
  out.push(`Policy ${e.policy.name}`);
  for (const [k, v] of rows) out.push(`  ${k.padEnd(width)}  ${v}`);
  out.push('');
  out.push('Stages');
  for (const s of e.stages) {
    out.push(`  ${s.command}`);
    out.push(...stepLines(s.steps, '    '));
    if (s.reply !== null) out.push(`    → ${replyText(s.reply)}`);
    if (s.note !== undefined) out.push(`    (${s.note})`);
  }
  out.push('');
  out.push('Hourly counters and connection counts are those of this process (none yet), not of a running gateway.');
  return `${out.join('\n')}\n`;
}

interface ExplainOptions {
  readonly ip: string;
  readonly helo?: string;
  readonly from?: string;
  readonly to?: string[];
  readonly config?: string;
  readonly listener?: string;
}

export async function runPolicyExplain(config: PosternConfig, opts: ExplainOptions): Promise<string> {
  const listener = config.listeners.find((l) => l.name === (opts.listener ?? config.listeners[0].name)) ?? config.listeners[0];
  const dns = new DnsResolver({ servers: config.dns.servers, timeoutMs: config.timeouts.dns, cacheMs: 0 });
  // Local recipients as the gateway sees them: the users file when mailboxes.users_file is set.
  const mailboxes = await openLocalMailboxes(config, silentLogger());
  try {
    const engine = new ConfiguredPolicyEngine({ config, dns, ...(mailboxes.directory ? { directory: mailboxes.directory } : {}) });
    const explanation = await explainPolicy(engine, {
      ip: opts.ip,
      helo: opts.helo ?? `[${opts.ip}]`,
      from: opts.from ?? '<>',
      to: opts.to ?? [],
      listener: listener.name,
      banner: listener.banner,
    });
    return formatExplanation(explanation, listener.name);
  } finally {
    await mailboxes.close();
  }
}

export function registerPolicyCommand(program: Command): void {
  const policy = program.command('policy').description('mail-flow policy tools');
  policy
    .command('explain')
    .description('show which sender group and policy a client gets, the checks with their DNS answers, and the reply of each stage (nothing is sent)')
    .requiredOption('--ip <address>', "the client's IP address")
    .option('--helo <name>', 'the HELO/EHLO name', undefined)
    .option('--from <address>', 'the MAIL FROM address ("" or <> for the null sender)', '<>')
    .option('--to <addresses...>', 'RCPT TO addresses')
    .option('--listener <name>', 'the listener the client connects to (default: the first)')
    .option('-c, --config <file>', 'configuration file (YAML)')
    .action(async (opts: ExplainOptions) => {
      if (isIP(opts.ip) === 0) {
        process.stderr.write(`postern: --ip: "${opts.ip}" is not an IP address\n`);
        process.exit(2);
      }
      const config = loadCliConfig(opts.config);
      process.stdout.write(await runPolicyExplain(config, opts));
    });
}
