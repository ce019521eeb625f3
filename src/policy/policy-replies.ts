/**
 * The replies of one mail-flow policy: catalogue entries with the administrator's overrides
 * applied — the policy's own `reply_overrides` first, then the global ones. Both were validated
 * at load (src/config/reply-override.ts), so a transient reply stays transient unless the config
 * said `allow_class_change: true`.
 */
import { renderReply, replyTemplateFor, type ReplyOverrides, type ReplyTemplate } from '../config/reply-override.js';
import type { ReplyId } from '../smtp/reply-catalogue.js';
import type { Reply, ReplyVars } from '../smtp/reply.js';

export class PolicyReplies {
  private readonly templates = new Map<ReplyId, ReplyTemplate>();

  constructor(
    private readonly hostname: string,
    private readonly global: ReplyOverrides,
    private readonly own: ReplyOverrides,
  ) {}

  /** The reply for a catalogue id; `{hostname}` is always filled. */
  render(id: ReplyId, vars: ReplyVars = {}, extraLines: readonly string[] = []): Reply {
    let t = this.templates.get(id);
    if (t === undefined) {
      // A policy's override replaces a global one for the same id as a whole (each was validated alone).
      t = replyTemplateFor(id, { [id]: this.own[id] ?? this.global[id] });
      this.templates.set(id, t);
    }
    const r = renderReply(t, { hostname: this.hostname, ...vars });
    // Control characters could split a reply line in two; never let them through.
    // eslint-disable-next-line no-control-regex
    return extraLines.length === 0 ? r : { ...r, lines: [...r.lines, ...extraLines.map((l) => l.replace(/[\x00-\x1f\x7f]/g, '?'))] };
  }

  /**
   * A refusal given as the greeting. RFC 5321 §3.1 and §4.3.2 allow only 220, 554 and 421 there,
   * so a check that answers 550 or 450 at RCPT answers 554 or 421 (then close) at the greeting,
   * keeping its enhanced code and text.
   */
  renderAtGreeting(id: ReplyId, vars: ReplyVars = {}): Reply {
    const r = this.render(id, vars);
    return { ...r, code: r.code >= 500 ? 554 : 421 };
  }

  /** Whether an override is in force for `id` (for explanations). */
  overridden(id: ReplyId): boolean {
    return this.own[id] !== undefined || this.global[id] !== undefined;
  }
}
