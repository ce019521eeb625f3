/**
 * Reply overrides: an administrator's replacement code, enhanced status code and/or text for one
 * catalogue entry (as commercial gateways allow per policy condition), validated against that
 * entry, and turned into the pieces a Reply is built from.
 *
 * Rules (shared/reply-codes.md, DESIGN.md rule 1):
 * - `code` has the RFC 5321 §4.2 form (`%x32-35 %x30-35 %x30-39`: 200-559, second digit 0-5).
 * - A transient entry (4xx) stays 4xx and a permanent one (5xx) stays 5xx, unless the override
 *   says `allow_class_change: true`. A success or intermediate entry (2xx/3xx) keeps its code:
 *   the session's state depends on it; only its text (and enhanced detail) may change.
 * - `enhanced` is an RFC 3463 code whose class digit equals the reply code's first digit. When
 *   the class changes and no `enhanced` is given, the entry's enhanced code follows with its class
 *   digit replaced (4.5.3 → 5.5.3). Entries without an enhanced code (greeting, 354, HELO 250)
 *   cannot be given one.
 * - `text` is printable ASCII (RFC 5321 §4.2 textstring), one line, and uses only the
 *   `{placeholders}` the entry's own text has.
 */
import { z } from 'zod';
import { parseEnhancedStatus } from '../smtp/enhanced-status.js';
import { REPLY_CATALOGUE, REPLY_IDS, type ReplyId } from '../smtp/reply-catalogue.js';
import { fillTemplate, type Reply, type ReplyVars } from '../smtp/reply.js';
import { didYouMean } from './suggest.js';

/** One override as written in the config file. */
export interface ReplyOverride {
  readonly code?: number;
  readonly enhanced?: string;
  readonly text?: string;
  readonly allow_class_change?: boolean;
}

/** Overrides keyed by catalogue id, as a config section (global or per policy) holds them. */
export type ReplyOverrides = Readonly<Partial<Record<ReplyId, ReplyOverride>>>;

/** What a Reply is built from: a catalogue entry with an override applied (or not). */
export interface ReplyTemplate {
  readonly id: ReplyId;
  readonly code: number;
  readonly enhanced: string | null;
  /** Template text with `{placeholders}`, filled by `renderReply`. */
  readonly text: string;
}

/** A problem with an override; `path` is relative to the override (`[]` = the id itself). */
export interface ReplyOverrideProblem {
  readonly path: readonly ('code' | 'enhanced' | 'text')[];
  readonly message: string;
}

const REPLY_CODE_FORM = /^[2-5][0-5][0-9]$/;
const TEXTSTRING = /^[\t\x20-\x7e]+$/;
const PLACEHOLDER = /\{([a-z]+)\}/g;
/** RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; leave room for code and enhanced code. */
const MAX_TEXT_LENGTH = 480;

export function isReplyId(id: string): id is ReplyId {
  return Object.prototype.hasOwnProperty.call(REPLY_CATALOGUE, id);
}

function placeholdersOf(text: string): Set<string> {
  return new Set(Array.from(text.matchAll(PLACEHOLDER), (m) => m[1]));
}

function classWord(firstDigit: number): string {
  switch (firstDigit) {
    case 2: return 'success (2xx)';
    case 3: return 'intermediate (3xx)';
    case 4: return 'transient (4xx)';
    default: return 'permanent (5xx)';
  }
}

/** Every problem with `override` as an override of catalogue entry `id`; empty when valid. */
export function validateReplyOverride(id: string, override: ReplyOverride): ReplyOverrideProblem[] {
  if (!isReplyId(id)) {
    return [{ path: [], message: `unknown reply id "${id}"${didYouMean(id, REPLY_IDS)}` }];
  }
  const entry = REPLY_CATALOGUE[id];
  const problems: ReplyOverrideProblem[] = [];
  const entryFirstDigit = Math.floor(entry.code / 100);
  let effectiveCode = entry.code;

  if (override.code === undefined && override.enhanced === undefined && override.text === undefined) {
    problems.push({ path: [], message: 'an override needs at least one of code, enhanced, text' });
  }

  if (override.code !== undefined) {
    const code = override.code;
    if (!Number.isInteger(code) || !REPLY_CODE_FORM.test(String(code))) {
      problems.push({
        path: ['code'],
        message: `${code} is not a reply code: RFC 5321 §4.2 codes are 200-559 with a second digit 0-5`,
      });
    } else {
      const firstDigit = Math.floor(code / 100);
      if (firstDigit !== entryFirstDigit) {
        const failureToFailure = entryFirstDigit >= 4 && firstDigit >= 4;
        if (!failureToFailure) {
          problems.push({
            path: ['code'],
            message: `"${id}" is a ${classWord(entryFirstDigit)} reply (${entry.code}); ${code} would make it ${classWord(firstDigit)}, which no override may do`,
          });
        } else if (override.allow_class_change !== true) {
          problems.push({
            path: ['code'],
            message: `"${id}" is a ${classWord(entryFirstDigit)} reply (${entry.code}); ${code} would make it ${classWord(firstDigit)}: set allow_class_change: true to do that on purpose`,
          });
        }
      } else if (entryFirstDigit <= 3 && code !== entry.code) {
        problems.push({
          path: ['code'],
          message: `"${id}" is a ${classWord(entryFirstDigit)} reply; its code ${entry.code} cannot be overridden, only its text`,
        });
      }
      effectiveCode = code;
    }
  }

  if (override.enhanced !== undefined) {
    const status = parseEnhancedStatus(override.enhanced);
    if (entry.enhanced === null) {
      problems.push({ path: ['enhanced'], message: `"${id}" (${entry.code}) carries no enhanced status code` });
    } else if (status === null) {
      problems.push({
        path: ['enhanced'],
        message: `"${override.enhanced}" is not an RFC 3463 enhanced status code like 4.5.3 (class 2, 4 or 5; subject and detail 0-999)`,
      });
    } else if (status.klass !== Math.floor(effectiveCode / 100)) {
      problems.push({
        path: ['enhanced'],
        message: `enhanced code ${override.enhanced} has class ${status.klass}, but the reply code ${effectiveCode} has class ${Math.floor(effectiveCode / 100)}; they must agree (RFC 3463 §3.1)`,
      });
    }
  }

  if (override.text !== undefined) {
    const text = override.text.trim();
    if (text === '') {
      problems.push({ path: ['text'], message: 'must not be empty' });
    } else if (!TEXTSTRING.test(text)) {
      problems.push({
        path: ['text'],
        message: 'reply text must be one line of printable ASCII (RFC 5321 §4.2 textstring)',
      });
    } else if (text.length > MAX_TEXT_LENGTH) {
      problems.push({ path: ['text'], message: `reply text must be at most ${MAX_TEXT_LENGTH} characters (RFC 5321 §4.5.3.1.5)` });
    } else {
      const known = placeholdersOf(entry.text);
      for (const name of placeholdersOf(text)) {
        if (!known.has(name)) {
          const offered = known.size === 0 ? 'this reply has none' : `this reply has ${[...known].map((n) => `{${n}}`).join(', ')}`;
          problems.push({ path: ['text'], message: `unknown placeholder {${name}}: ${offered}` });
        }
      }
    }
  }
  return problems;
}

/**
 * The catalogue entry `id` with `override` applied. Throws when the override is invalid
 * (config loading has already refused those, so this only throws on programming errors).
 */
export function resolveReplyOverride(id: ReplyId, override?: ReplyOverride): ReplyTemplate {
  const entry = REPLY_CATALOGUE[id];
  if (override === undefined) return { id, code: entry.code, enhanced: entry.enhanced, text: entry.text };
  const problems = validateReplyOverride(id, override);
  if (problems.length > 0) {
    throw new Error(`invalid override of "${id}": ${problems.map((p) => p.message).join('; ')}`);
  }
  const code = override.code ?? entry.code;
  let enhanced = entry.enhanced;
  if (override.enhanced !== undefined) {
    enhanced = override.enhanced;
  } else if (enhanced !== null && Math.floor(code / 100) !== Math.floor(entry.code / 100)) {
    enhanced = `${Math.floor(code / 100)}${enhanced.slice(1)}`;
  }
  return { id, code, enhanced, text: override.text?.trim() ?? entry.text };
}

/** The reply for `id` under the overrides in force (no entry for `id` = the catalogue's own). */
export function replyTemplateFor(id: ReplyId, overrides: ReplyOverrides = {}): ReplyTemplate {
  return resolveReplyOverride(id, overrides[id]);
}

/** Builds a Reply from a template, as `reply()` in src/smtp/reply.ts does from the catalogue. */
export function renderReply(template: ReplyTemplate, vars: ReplyVars = {}): Reply {
  const lines = fillTemplate(template.text, vars).trim().split('\n');
  return { id: template.id, code: template.code, enhanced: template.enhanced, lines };
}

/** The shape of one override in the config file (semantics are checked by `replyOverridesSchema`). */
export const replyOverrideSchema = z.strictObject({
  code: z.number().int().optional(),
  enhanced: z.string().optional(),
  text: z.string().optional(),
  allow_class_change: z.boolean().optional(),
});

/**
 * A map of overrides keyed by catalogue id, validated against the catalogue. Used for the
 * top-level `reply_overrides` and, later, per mail-flow policy.
 */
export const replyOverridesSchema = z
  .record(z.string(), replyOverrideSchema)
  .superRefine((overrides, ctx) => {
    for (const [id, override] of Object.entries(overrides)) {
      for (const problem of validateReplyOverride(id, override)) {
        const atKey = problem.path.length === 0;
        ctx.addIssue({
          code: 'custom',
          path: [id, ...problem.path],
          message: problem.message,
          params: atKey ? { at: 'key' } : {},
        });
      }
    }
  })
  .transform((overrides) => overrides as ReplyOverrides);
