/**
 * Renders the reply catalogue as the project's reference page (docs/reply-codes.md) and as a
 * plain table for `postern codes`. The page is generated, never edited by hand; a test fails
 * when the committed page differs from what this renders.
 */
import { REPLY_CATALOGUE, REPLY_IDS, replyClassOf, type ReplyStage } from './reply-catalogue.js';

const STAGE_TITLES: Record<ReplyStage, string> = {
  connection: 'Connection',
  helo: 'HELO / EHLO',
  mail: 'MAIL FROM',
  rcpt: 'RCPT TO',
  data: 'DATA and BDAT',
  other: 'Other commands',
  'tls-auth': 'STARTTLS and AUTH',
};

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function renderReplyReferenceMarkdown(): string {
  const out: string[] = [
    '# Postern reply codes',
    '',
    '<!-- Generated from src/smtp/reply-catalogue.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    'Every reply Postern sends as a receiving server, by stage. "soft" replies are transient (4xx):',
    'the client keeps the message and retries. "hard" replies are permanent (5xx): the client',
    'returns the message to its sender. Texts are defaults; `{name}` parts are filled in at run time.',
    '',
  ];
  for (const stage of Object.keys(STAGE_TITLES) as ReplyStage[]) {
    const ids = REPLY_IDS.filter((id) => REPLY_CATALOGUE[id].stage === stage);
    if (ids.length === 0) continue;
    out.push(`## ${STAGE_TITLES[stage]}`, '', '| id | code | enhanced | class | default text | when |', '|---|---|---|---|---|---|');
    for (const id of ids) {
      const e = REPLY_CATALOGUE[id];
      out.push(`| \`${id}\` | ${e.code} | ${e.enhanced ?? '—'} | ${replyClassOf(e.code)} | ${escapeCell(e.text)} | ${escapeCell(e.when)} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

export function renderReplyTable(): string {
  const rows = REPLY_IDS.map((id) => {
    const e = REPLY_CATALOGUE[id];
    return [String(e.code), e.enhanced ?? '-', replyClassOf(e.code), id, e.text];
  });
  const header = ['CODE', 'ENH', 'CLASS', 'ID', 'DEFAULT TEXT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [fmt(header), ...rows.map(fmt)].join('\n') + '\n';
}
