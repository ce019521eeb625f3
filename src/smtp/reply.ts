/**
 * Reply: one SMTP reply (RFC 5321 §4.2), built from a catalogue entry, encoded for the wire
 * (server side) and parsed from the wire (client side).
 */
import { REPLY_CATALOGUE, type ReplyId, replyClassOf, type ReplyClass } from './reply-catalogue.js';

export interface Reply {
  /** The catalogue entry this reply came from (an override keeps the id it overrides). */
  readonly id: ReplyId;
  readonly code: number;
  readonly enhanced: string | null;
  /** One element per line of the reply. */
  readonly lines: readonly string[];
}

export type ReplyVars = Readonly<Record<string, string | number>>;

const PLACEHOLDER = /\{([a-z]+)\}/g;

/** Fills `{name}` placeholders; a missing variable renders as the empty string. */
export function fillTemplate(template: string, vars: ReplyVars): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = vars[name];
    return v === undefined ? '' : sanitizeReplyText(String(v));
  });
}

/** Control characters in reply text could split a reply into two lines; never let them through. */
function sanitizeReplyText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, '?');
}

/** Builds the reply for a catalogue entry. Text lines beyond the first come from `extraLines`. */
export function reply(id: ReplyId, vars: ReplyVars = {}, extraLines: readonly string[] = []): Reply {
  const entry = REPLY_CATALOGUE[id];
  const text = fillTemplate(entry.text, vars).trim();
  const lines = text.split('\n');
  return { id, code: entry.code, enhanced: entry.enhanced, lines: [...lines, ...extraLines.map(sanitizeReplyText)] };
}

export function classOfReply(r: Pick<Reply, 'code'>): ReplyClass {
  return replyClassOf(r.code);
}

/**
 * Wire form. RFC 5321 §4.2.1: "code-text" on every line but the last, "code text" on the last.
 * RFC 2034 §4: the enhanced status code leads the text of each line.
 */
export function encodeReply(r: Reply): string {
  let out = '';
  const last = r.lines.length - 1;
  r.lines.forEach((line, i) => {
    const sep = i === last ? ' ' : '-';
    const enh = r.enhanced ? `${r.enhanced} ` : '';
    out += `${r.code}${sep}${enh}${line}`.trimEnd() + '\r\n';
  });
  return out;
}
