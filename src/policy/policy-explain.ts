/**
 * `postern policy explain`: runs one imagined session through the engine — connect, HELO, MAIL,
 * RCPT for each recipient — without any socket, and collects for each stage the checks that ran
 * (with their DNS answers) and the reply the gateway would give. Same engine, same resolver, same
 * replies (overrides included) as a live session; only the counters are fresh.
 */
import { NO_MAIL_PARAMS, NO_RCPT_PARAMS } from '../smtp/esmtp-params.js';
import { formatMailbox, parseForwardPath, parsePath, type Mailbox } from '../smtp/mailbox.js';
import type { Reply } from '../smtp/reply.js';
import type { Verdict } from '../smtp/server/server-events.js';
import type { ConfiguredPolicyEngine, ConfiguredSessionPolicy } from './policy-engine.js';
import type { MailFlowPolicy } from './mail-flow-policy.js';
import type { PolicyStep } from './policy-trace.js';

export interface ExplainInput {
  readonly ip: string;
  readonly helo: string;
  /** The reverse-path, with or without <>; "" or "<>" is the null sender. */
  readonly from: string;
  readonly to: readonly string[];
  readonly listener: string;
  /** The listener's banner (the greeting when the policy sets none). */
  readonly banner: string;
}

export interface ExplainStage {
  /** "connect", "HELO", "MAIL FROM:<a@b>", "RCPT TO:<c@d>". */
  readonly command: string;
  readonly steps: readonly PolicyStep[];
  /** null: the stage is not reached (an earlier reply ended the session). */
  readonly reply: Reply | null;
  readonly note?: string;
}

export interface Explanation {
  readonly ip: string;
  readonly senderGroup: string | null;
  /** Position of the group in `sender_groups`, or null. */
  readonly senderGroupIndex: number | null;
  readonly policy: MailFlowPolicy;
  /** How the group was found. */
  readonly groupSteps: readonly PolicyStep[];
  readonly stages: readonly ExplainStage[];
}

function angle(address: string): string {
  const a = address.trim();
  return a.startsWith('<') ? a : `<${a}>`;
}

export async function explainPolicy(engine: ConfiguredPolicyEngine, input: ExplainInput): Promise<Explanation> {
  let steps: PolicyStep[] = [];
  const observer = { step: (s: PolicyStep) => steps.push(s) };
  const session: ConfiguredSessionPolicy = await engine.openSession(
    { ip: input.ip, port: 0, listener: input.listener, connectionsFromIp: 1 },
    observer,
  );
  const take = (): PolicyStep[] => {
    const s = steps;
    steps = [];
    return s;
  };
  const groupSteps = take();
  const stages: ExplainStage[] = [];
  const replyOf = (v: Verdict, accept: () => Reply): Reply | null => (v.kind === 'refuse' ? null : v.reply ?? accept());
  let open = true;
  const unreached = (command: string): void => {
    stages.push({ command, steps: [], reply: null, note: 'not reached' });
  };

  // connect
  const c = await session.connect();
  const greeting = replyOf(c, () => session.reply('greeting', { banner: input.banner }));
  stages.push({
    command: 'connect', steps: take(), reply: greeting,
    ...(c.kind === 'refuse' ? { note: 'the connection is closed without a greeting (TCPREFUSE)' }
      : c.kind === 'reject' && greeting?.code === 554 ? { note: 'after this greeting only QUIT is honoured; anything else gets 503 5.5.1' }
        : c.kind === 'reject' ? { note: 'then the connection is closed' } : {}),
  });
  if (c.kind !== 'accept') open = false;

  // HELO
  if (open) {
    const h = session.helo();
    stages.push({ command: `EHLO ${input.helo}`, steps: take(), reply: replyOf(h, () => session.reply('helo.ok', { client: `[${input.ip}]` })) });
    if (h.kind !== 'accept') open = false;
  } else unreached(`EHLO ${input.helo}`);

  // MAIL
  const from = angle(input.from);
  let sender: Mailbox | null = null;
  let mailOk = false;
  if (open) {
    const parsed = parsePath(from);
    if (!parsed.ok) {
      stages.push({ command: `MAIL FROM:${from}`, steps: [], reply: session.reply(parsed.kind === 'syntax' ? 'mail.syntax' : 'mail.bad-sender') });
    } else {
      sender = parsed.mailbox;
      const m = await session.mail({ helo: input.helo, reversePath: sender, params: NO_MAIL_PARAMS });
      stages.push({ command: `MAIL FROM:${from}`, steps: take(), reply: replyOf(m, () => session.reply('mail.ok', { address: formatMailbox(sender) })) });
      mailOk = m.kind === 'accept';
      if (m.kind === 'reject' && m.disconnect) open = false;
    }
  } else unreached(`MAIL FROM:${from}`);

  // RCPT
  let accepted = 0;
  for (const to of input.to) {
    const path = angle(to);
    const command = `RCPT TO:${path}`;
    if (!open) {
      unreached(command);
      continue;
    }
    if (!mailOk) {
      stages.push({ command, steps: [], reply: session.reply('sequence.need-mail'), note: 'MAIL was refused' });
      continue;
    }
    const parsed = parseForwardPath(path);
    if (!parsed.ok) {
      stages.push({ command, steps: [], reply: session.reply(parsed.kind === 'syntax' ? 'rcpt.syntax' : 'rcpt.bad-recipient') });
      continue;
    }
    if (accepted >= session.policy.effective.maxRecipients) {
      stages.push({ command, steps: [], reply: session.reply('rcpt.too-many'), note: `the policy's maximum of ${session.policy.effective.maxRecipients} recipients per message` });
      continue;
    }
    const r = await session.rcpt({
      helo: input.helo, reversePath: sender, params: NO_MAIL_PARAMS,
      forwardPath: parsed.mailbox, rcptParams: NO_RCPT_PARAMS, accepted,
    });
    stages.push({ command, steps: take(), reply: replyOf(r, () => session.reply('rcpt.ok', { address: formatMailbox(parsed.mailbox) })) });
    if (r.kind === 'accept') accepted++;
    if (r.kind === 'reject' && r.disconnect) open = false;
  }

  return {
    ip: input.ip,
    senderGroup: session.senderGroup,
    senderGroupIndex: session.match.group?.index ?? null,
    policy: session.policy,
    groupSteps,
    stages,
  };
}
