/**
 * A mail-flow policy as the engine applies it: the config's fields, the session limits it sets
 * (message size, recipients per message, messages per connection — unset ones fall back to
 * `limits:`), and its replies with the overrides in force.
 */
import type { MailFlowPolicyConfig } from '../config/policy-schema.js';
import type { ReplyOverrides } from '../config/reply-override.js';
import type { SessionLimits } from '../smtp/server/session-limits.js';
import { PolicyReplies } from './policy-replies.js';

/** The global session limits a policy falls back to (`limits:` of the config). */
export interface BaseLimits {
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
  readonly maxMessagesPerConnection: number;
}

export interface MailFlowPolicy {
  readonly name: string;
  readonly config: MailFlowPolicyConfig;
  /** What the policy itself sets; the listener's limits apply to the rest. */
  readonly limits: Partial<SessionLimits>;
  /** Every session limit in force under this policy (for explanations). */
  readonly effective: BaseLimits;
  readonly replies: PolicyReplies;
  /** May send to any domain. */
  readonly relays: boolean;
}

export function resolveMailFlowPolicy(
  name: string,
  config: MailFlowPolicyConfig,
  base: BaseLimits,
  hostname: string,
  globalOverrides: ReplyOverrides,
): MailFlowPolicy {
  const limits: { -readonly [K in keyof SessionLimits]?: SessionLimits[K] } = {};
  if (config.max_message_size !== null) limits.maxMessageSize = config.max_message_size;
  if (config.max_recipients_per_message !== null) limits.maxRecipients = config.max_recipients_per_message;
  if (config.max_messages_per_connection !== null) limits.maxMessagesPerConnection = config.max_messages_per_connection;
  return {
    name,
    config,
    limits,
    effective: { ...base, ...limits } as BaseLimits,
    replies: new PolicyReplies(hostname, globalOverrides, config.reply_overrides),
    relays: config.action === 'relay',
  };
}
