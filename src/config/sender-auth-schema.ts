/**
 * `sender_auth:` — who a message is from: SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489) and
 * ARC (RFC 8617), checked at the end of data, their results added to the stored message as an
 * `Authentication-Results:` header (RFC 8601) with our hostname as authserv-id, and what each
 * outcome gets. The settings at the top apply to every mail-flow policy; `policies:` changes them
 * per mail-flow policy (a key of `policies:` of the config, or a predefined one).
 *
 *   sender_auth:
 *     spf_fail: reject                    # 550 5.7.23
 *     dmarc_reject: quarantine            # held queue instead of 554 5.7.1
 *     policies:
 *       STRICT: { spf_softfail: reject, temperror: defer }
 *       TRUSTED: { check: false }
 *
 * A failure that DMARC overrules never rejects: with `spf_fail: reject`, a message whose SPF
 * fails but whose aligned DKIM signature passes DMARC is accepted (RFC 7489 §10.1: reject on
 * SPF before DMARC only where no DMARC is published).
 */
import { z } from 'zod';
import { didYouMean } from './suggest.js';

export const SPF_FAIL_ACTIONS = ['reject', 'accept'] as const;
export const TEMPERROR_ACTIONS = ['accept', 'defer'] as const;
export const DMARC_ACTIONS = ['reject', 'quarantine', 'accept'] as const;

export type DmarcAction = (typeof DMARC_ACTIONS)[number];

/** Every setting, resolved. */
export interface SenderAuthSettings {
  /** false: nothing is checked and no Authentication-Results header is added. */
  readonly check: boolean;
  /**
   * No checks for clients that may relay (authenticated submission, or a policy with action
   * relay): their mail is outbound, and SPF of our own domains from their address would fail.
   */
  readonly skip_relay_clients: boolean;
  /** SPF `fail` (-all): reject (550 5.7.23) or accept. */
  readonly spf_fail: (typeof SPF_FAIL_ACTIONS)[number];
  /** SPF `softfail` (~all): accept or reject (550 5.7.23). */
  readonly spf_softfail: (typeof SPF_FAIL_ACTIONS)[number];
  /** SPF `temperror` (DNS trouble): accept or defer (451 4.7.24). */
  readonly spf_temperror: (typeof TEMPERROR_ACTIONS)[number];
  /** DMARC fails and the domain publishes p=reject: reject (554 5.7.1), quarantine (held queue) or accept. */
  readonly dmarc_reject: DmarcAction;
  /** DMARC fails and the domain publishes p=quarantine. */
  readonly dmarc_quarantine: DmarcAction;
  /**
   * DKIM or DMARC lookups failed temporarily and so DMARC could not decide: accept, or defer
   * (451 4.7.1) so the client tries again later.
   */
  readonly temperror: (typeof TEMPERROR_ACTIONS)[number];
  /** RSA keys shorter than this do not verify (RFC 8301 §3.2: at least 1024). */
  readonly min_key_bits: number;
}

export const SENDER_AUTH_DEFAULTS: SenderAuthSettings = {
  check: true,
  skip_relay_clients: true,
  spf_fail: 'reject',
  spf_softfail: 'accept',
  spf_temperror: 'accept',
  dmarc_reject: 'reject',
  dmarc_quarantine: 'quarantine',
  temperror: 'accept',
  min_key_bits: 1024,
};

const settingsShape = {
  check: z.boolean(),
  skip_relay_clients: z.boolean(),
  spf_fail: z.enum(SPF_FAIL_ACTIONS),
  spf_softfail: z.enum(SPF_FAIL_ACTIONS),
  spf_temperror: z.enum(TEMPERROR_ACTIONS),
  dmarc_reject: z.enum(DMARC_ACTIONS),
  dmarc_quarantine: z.enum(DMARC_ACTIONS),
  temperror: z.enum(TEMPERROR_ACTIONS),
  min_key_bits: z.number().int({ error: 'expected a whole number' }).min(512).max(16384),
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Per mail-flow policy: any of the settings; the rest come from the top of the section. */
const policySettingsSchema = z.strictObject(settingsShape).partial();

export const senderAuthSchema = z
  .strictObject({
    check: settingsShape.check.default(SENDER_AUTH_DEFAULTS.check),
    skip_relay_clients: settingsShape.skip_relay_clients.default(SENDER_AUTH_DEFAULTS.skip_relay_clients),
    spf_fail: settingsShape.spf_fail.default(SENDER_AUTH_DEFAULTS.spf_fail),
    spf_softfail: settingsShape.spf_softfail.default(SENDER_AUTH_DEFAULTS.spf_softfail),
    spf_temperror: settingsShape.spf_temperror.default(SENDER_AUTH_DEFAULTS.spf_temperror),
    dmarc_reject: settingsShape.dmarc_reject.default(SENDER_AUTH_DEFAULTS.dmarc_reject),
    dmarc_quarantine: settingsShape.dmarc_quarantine.default(SENDER_AUTH_DEFAULTS.dmarc_quarantine),
    temperror: settingsShape.temperror.default(SENDER_AUTH_DEFAULTS.temperror),
    min_key_bits: settingsShape.min_key_bits.default(SENDER_AUTH_DEFAULTS.min_key_bits),
    policies: z.record(z.string().regex(NAME, { error: 'expected a policy name' }), policySettingsSchema).default({}),
  })
  .transform((input) => {
    const { policies, ...base } = input;
    const resolved: Record<string, SenderAuthSettings> = {};
    for (const [name, own] of Object.entries(policies)) {
      const merged: Record<string, unknown> = { ...base };
      for (const [key, value] of Object.entries(own)) if (value !== undefined) merged[key] = value;
      resolved[name] = merged as unknown as SenderAuthSettings;
    }
    const settings: SenderAuthSettings = base;
    return { ...settings, policies: resolved as Readonly<Record<string, SenderAuthSettings>> };
  });

export type SenderAuthConfig = z.output<typeof senderAuthSchema>;

/** The settings in force for a mail-flow policy. */
export function senderAuthFor(config: SenderAuthConfig, policy: string): SenderAuthSettings {
  return config.policies[policy] ?? config;
}

/** Every `sender_auth.policies` key names a mail-flow policy (run by the root schema). */
export function checkSenderAuthReferences(
  config: { readonly sender_auth?: unknown; readonly policies?: unknown },
  ctx: z.RefinementCtx,
): void {
  const auth = config.sender_auth as Partial<SenderAuthConfig> | undefined;
  if (typeof auth?.policies !== 'object' || auth.policies === null) return;
  if (typeof config.policies !== 'object' || config.policies === null) return;
  const known = Object.keys(config.policies);
  for (const name of Object.keys(auth.policies)) {
    if (!known.includes(name)) {
      ctx.addIssue({
        code: 'custom', path: ['sender_auth', 'policies', name], params: { at: 'key' },
        message: `unknown policy "${name}"${didYouMean(name, known) || `; known policies: ${known.join(', ')}`}`,
      });
    }
  }
}

/** The commented defaults of this section, for DEFAULT_CONFIG_YAML (parses to what an empty file gives). */
export const SENDER_AUTH_DEFAULT_YAML = `\
sender_auth:                         # SPF, DKIM, DMARC and ARC at the end of data; the results go into an
                                     # Authentication-Results header (authserv-id: hostname) of the stored message
  check: true                        # false: no checks, no header
  skip_relay_clients: true           # no checks for clients that may relay (AUTH, or a relay policy): outbound mail
  spf_fail: reject                   # SPF fail: reject (550 5.7.23) | accept — never when DMARC passes
  spf_softfail: accept               # SPF softfail: accept | reject (550 5.7.23) — never when DMARC passes
  spf_temperror: accept              # SPF lookups failed temporarily: accept | defer (451 4.7.24)
  dmarc_reject: reject               # DMARC fails, domain says p=reject: reject (554 5.7.1) | quarantine | accept
  dmarc_quarantine: quarantine       # DMARC fails, domain says p=quarantine: quarantine | reject | accept
                                     # quarantine: stored as held (postern queue ls --state held), not delivered
  temperror: accept                  # DKIM/DMARC lookups failed temporarily, DMARC undecided: accept | defer (451 4.7.1)
  min_key_bits: 1024                 # shorter DKIM/ARC RSA keys do not verify (RFC 8301)
  policies: {}                       # per mail-flow policy, any of the keys above, e.g.
#   STRICT: { spf_softfail: reject, temperror: defer }
#   TRUSTED: { check: false }
`;
