/**
 * Local mailboxes, wired (part of the composition root, beside src/gateway.ts): the one place
 * where the mailbox layer meets the policy, the server and delivery, which may not import it
 * (policy) or each other. From `mailboxes:` and `domains.local` it builds:
 *
 *   - the policy's RecipientDirectory: with `users_file`, the users file's verdict on each RCPT
 *     (250, 251 forward, 551 refer, 550 5.1.1 / 5.2.1, 450 4.2.1, 452 4.2.2 / 552 5.2.2 by the
 *     mailbox's usage and the declared SIZE, 451 4.4.3, an alias loop 451 4.3.0); without it,
 *     the policy's own list (`recipients.valid`);
 *   - delivery's LocalTransport: with `users_file`, MailboxTransport (status, quota, aliases,
 *     forwards at delivery time); without it, DeliveryService's plain Maildir writer;
 *   - an SMTP AUTH Authenticator from the users file's passwords (scrypt);
 *   - housekeeping: Maildir tmp/ leftovers of crashed deliveries (older than 36 h, as the
 *     Maildir spec says) are removed at start and every 6 hours.
 *
 * Both ways, a local mailbox is `<mailboxes.path>/<domain>/<local-part>/{tmp,new,cur}`.
 */
import type { Logger } from 'pino';
import type { PosternConfig } from './config/config-schema.js';
import type { LocalTransport } from './delivery/maildir-deliverer.js';
import { MailboxTransport } from './delivery/mailbox-transport.js';
import { MailboxDelivery } from './mailbox/mailbox-delivery.js';
import { cleanupMailRootTmp } from './mailbox/maildir-writer.js';
import type { RecipientVerdict } from './mailbox/recipient-check.js';
import { RecipientVerifier } from './mailbox/recipient-verifier.js';
import { UserDirectory, type LookupResult, type ReloadEvent } from './mailbox/user-directory.js';
import type { RecipientDirectory, RecipientLookup } from './policy/facts.js';
import { AddressList, normalizeDomain, unquoteLocalPart } from './policy/recipient-access-table.js';
import type { Authenticator } from './server/authenticator.js';
import { parseMailbox } from './smtp/mailbox.js';

/** How often Maildir tmp/ directories are swept for leftovers of crashed deliveries. */
export const MAILDIR_HOUSEKEEPING_MS = 6 * 3600 * 1000;

export interface LocalMailboxes {
  /** The users file, when `mailboxes.users_file` is set. */
  readonly users: UserDirectory | null;
  /** For the policy engine; null: its default, `recipients.valid`. */
  readonly directory: RecipientDirectory | null;
  /** For delivery; null: DeliveryService's plain Maildir writer under mailboxes.path. */
  readonly transport: LocalTransport | null;
  /** SMTP AUTH against the users file; null without one. */
  readonly authenticator: Authenticator | null;
  /** SIGHUP: reload the users file now. */
  reload(): Promise<void>;
  /** Sweeps tmp/ leftovers now and every 6 hours (delivery is running). */
  startHousekeeping(): void;
  close(): Promise<void>;
}

/** Why, in words, for `postern policy explain` and the policy's trace. */
function whyOf(lookup: LookupResult, verdict: RecipientVerdict): string {
  switch (verdict.reason) {
    case 'user': return `${lookup.address} is a mailbox of the users file`;
    case 'alias': return lookup.kind === 'alias'
      ? `${lookup.address} is an alias of ${lookup.targets.map((t) => t.address).join(', ')}`
      : `${lookup.address} is an alias`;
    case 'forward': return `${lookup.address} is forwarded to ${String(verdict.vars['address'])}`;
    case 'refer': return `${lookup.address} has moved to ${String(verdict.vars['address'])} (forwarding entry, mode refer)`;
    case 'unknown': return `no user ${lookup.address} in the users file`;
    case 'disabled': return `the mailbox ${lookup.address} is disabled`;
    case 'locked': return `the mailbox ${lookup.address} is locked`;
    case 'over-quota': return `the mailbox ${lookup.address} is over its quota (or the declared SIZE does not fit)`;
    case 'loop': return lookup.kind === 'loop' ? `alias or forwarding loop: ${lookup.chain.join(' → ')}` : 'alias or forwarding loop';
    case 'tempfail': return lookup.kind === 'tempfail' ? lookup.reason : 'the users file is not available';
  }
}

/** The addresses outside our mailboxes that accepting `lookup` makes us send to. */
function relayTargets(lookup: LookupResult): string[] {
  if (lookup.kind === 'forward' && lookup.mode === 'forward') return [lookup.to];
  if (lookup.kind === 'alias') return lookup.targets.filter((t) => t.kind === 'remote').map((t) => t.address);
  return [];
}

/** The RCPT-time directory: the mailbox layer's verdict as the policy's fact. */
export function mailboxRecipientDirectory(verifier: RecipientVerifier): RecipientDirectory {
  return {
    async lookup(address: string, declaredSize: number | null): Promise<RecipientLookup> {
      const { lookup, verdict } = await verifier.verify(address, declaredSize);
      if (verdict === null) return 'unknown'; // not a local domain of the directory: nobody there
      const forwardTo = relayTargets(lookup);
      return {
        accept: verdict.class === 'accept',
        reply: verdict.replyId,
        vars: verdict.vars,
        why: whyOf(lookup, verdict),
        ...(forwardTo.length > 0 ? { forwardTo } : {}),
      };
    },
  };
}

/** SMTP AUTH against the users file: a disabled user cannot log in; before the file has loaded, 454 4.7.0. */
export function usersAuthenticator(users: UserDirectory): Authenticator {
  const loaded = (): boolean => users.status().state === 'loaded';
  return {
    async verify(username: string, password: string) {
      if (!loaded()) return { kind: 'temporary' };
      const user = await users.authenticate(username, password);
      if (user === null || user.status === 'disabled') return { kind: 'invalid' };
      return { kind: 'ok', user: user.address };
    },
    ownsAddress(user: string, address: string): boolean {
      if (!loaded()) throw new Error('the users file has not loaded');
      const owner = users.findUser(user);
      const found = users.findUser(address);
      return owner !== null && found !== null && owner.key === found.key;
    },
  };
}

/** True for an address on `recipients.blocked`. */
function blockedCheck(blocked: readonly string[]): (address: string) => boolean {
  const list = new AddressList(blocked);
  return (address) => {
    const m = parseMailbox(address.trim().replace(/^<(.*)>$/, '$1'));
    return m !== null && list.match(unquoteLocalPart(m.localPart), normalizeDomain(m.domain)) !== null;
  };
}

function logReload(log: Logger, file: string): (event: ReloadEvent) => void {
  return (event) => {
    if (event.ok) {
      if (event.changed) log.info({ users_file: file, generation: event.generation }, 'users file loaded');
      if (event.changed) for (const w of event.warnings) log.warn({ users_file: file }, `users file: ${w}`);
    } else if (event.servingGeneration === null) {
      log.error({ users_file: file, err: event.error.message }, 'users file cannot be loaded: every local recipient gets 451 4.4.3 until it can');
    } else {
      log.error({ users_file: file, err: event.error.message, serving_generation: event.servingGeneration }, 'users file cannot be reloaded: the last good copy stays in use');
    }
  };
}

export async function openLocalMailboxes(config: PosternConfig, log: Logger): Promise<LocalMailboxes> {
  const m = config.mailboxes;
  let timer: NodeJS.Timeout | null = null;
  const sweep = (): void => {
    cleanupMailRootTmp(m.path).then((removed) => {
      if (removed.length > 0) log.info({ removed }, 'maildir housekeeping: removed leftovers of crashed deliveries from tmp/');
    }, (err: unknown) => log.warn({ err: String(err), path: m.path }, 'maildir housekeeping failed'));
  };
  const housekeeping = {
    startHousekeeping(): void {
      if (timer !== null) return;
      sweep();
      timer = setInterval(sweep, MAILDIR_HOUSEKEEPING_MS);
      timer.unref();
    },
    stopHousekeeping(): void {
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
  };

  if (m.users_file === undefined) {
    return {
      users: null, directory: null, transport: null, authenticator: null,
      reload: async () => undefined,
      startHousekeeping: housekeeping.startHousekeeping,
      close: async () => housekeeping.stopHousekeeping(),
    };
  }

  // Our own host name is local too, as the router has it (postmaster@<hostname> gets DSN copies).
  const localDomains = [...new Set([...config.domains.local, config.hostname])];
  const users = await UserDirectory.open({
    file: m.users_file, localDomains, localPartCase: m.local_part_case, onReload: logReload(log, m.users_file),
  });
  const mailboxes = new MailboxDelivery({ root: m.path, hostname: config.hostname });
  const verifier = new RecipientVerifier({
    directory: users,
    // With LMTP the mail store answers 452/552 itself.
    quota: m.transport === 'maildir' ? mailboxes.quota : null,
    overQuota: m.over_quota,
  });
  return {
    users,
    directory: mailboxRecipientDirectory(verifier),
    transport: new MailboxTransport({ directory: users, mailboxes, overQuota: m.over_quota, isBlocked: blockedCheck(config.recipients.blocked) }),
    authenticator: usersAuthenticator(users),
    async reload() {
      await users.reload();
    },
    startHousekeeping: housekeeping.startHousekeeping,
    async close() {
      housekeeping.stopHousekeeping();
      await users.close();
    },
  };
}
