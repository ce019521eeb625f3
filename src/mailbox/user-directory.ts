/**
 * The user directory: who a local address is. `lookup(address)` answers from an in-memory copy
 * of the users file (no I/O per RCPT) with one of:
 *
 *   user       a local mailbox (by its address or one of its own aliases)
 *   alias      an alias, expanded recursively to its final targets: mailboxes, remote addresses,
 *              and the targets that cannot take mail (unknown local addresses, refer entries)
 *   forward    a forwarding-table entry: mode forward (251, we relay to `to`) or refer (551)
 *   loop       following aliases/forwards comes back to an address already on the way
 *   unknown    a local domain, but nobody there
 *   not-local  a domain that is not in domains.local (not the mailbox layer's business)
 *   tempfail   the users file has never loaded (missing, unreadable, invalid since startup)
 *
 * Comparison: domains case-insensitively (and IDNs as A-labels); local parts per
 * `local_part_case`; `postmaster` always case-insensitively (RFC 5321 §4.5.1).
 *
 * postmaster@<each local domain> exists even if the file does not define it (RFC 5321 §4.5.1
 * requires it). Unless postmaster@<that domain> is itself a user, alias or forwarding entry, it
 * resolves to, in this order:
 *   1. the file's top-level `postmaster:` addresses (expanded like an alias), else
 *   2. the first user with `admin: true` whose status is active, else
 *   3. a built-in mailbox postmaster@<domain> (Maildir <path>/<domain>/postmaster, no quota),
 * so mail to the postmaster is never refused for want of configuration. A bare `<Postmaster>`
 * (no domain) is postmaster@ the first local domain.
 *
 * Reloading: the file's directory is watched (debounced) and `reload()` reloads on demand (the
 * gateway calls it on SIGHUP). A reload that fails (file missing mid-edit, unreadable, invalid)
 * keeps serving the last good copy and reports the error; only a directory that has never
 * loaded answers tempfail. Without a users file (mailboxes.users_file not set) there are no
 * users: every local address is unknown except postmaster@.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { formatConfigPath } from '../config/config-error.js';
import { canonicalAddress, canonicalDomain, isBarePostmaster, type CanonicalAddress } from './mailbox-address.js';
import type { LocalPartCase } from '../config/mailboxes-schema.js';
import { verifyPassword } from './password-hash.js';
import { parseUsersFileText, type ForwardMode, type MailboxStatus, type UsersFileData } from './users-file.js';

export interface MailboxUser {
  /** As written in the users file (or postmaster@<domain> for the built-in postmaster). */
  readonly address: string;
  /** The comparison key `local@domain` (see mailbox-address.ts). */
  readonly key: string;
  /** Local part and domain as compared; the default Maildir is built from them. */
  readonly localPart: string;
  readonly domain: string;
  /** Bytes, or null for no quota. */
  readonly quota: number | null;
  readonly status: MailboxStatus;
  readonly aliases: readonly string[];
  readonly admin: boolean;
  readonly passwordHash: string | null;
  /** Maildir relative to mailboxes.path when the file sets one. */
  readonly maildir: string | null;
  /** True for the built-in postmaster mailbox (nobody configured one). */
  readonly builtin: boolean;
}

/** A final target of an alias expansion. */
export type AliasTarget =
  | { readonly kind: 'mailbox'; readonly address: string; readonly user: MailboxUser }
  | { readonly kind: 'remote'; readonly address: string }
  /** A local address nobody has: this target cannot take mail. */
  | { readonly kind: 'unknown'; readonly address: string }
  /** A forwarding entry in refer mode: this target cannot take mail, its owner moved to `to`. */
  | { readonly kind: 'refer'; readonly address: string; readonly to: string };

export type LookupResult =
  | { readonly kind: 'user'; readonly address: string; readonly user: MailboxUser }
  | { readonly kind: 'alias'; readonly address: string; readonly targets: readonly AliasTarget[] }
  | { readonly kind: 'forward'; readonly address: string; readonly mode: ForwardMode; readonly to: string }
  /** `chain`: the comparison keys along the loop, the repeated one last (`a@x → b@x → a@x`). */
  | { readonly kind: 'loop'; readonly address: string; readonly chain: readonly string[] }
  | { readonly kind: 'unknown'; readonly address: string }
  | { readonly kind: 'not-local'; readonly address: string }
  | { readonly kind: 'tempfail'; readonly address: string; readonly reason: string };

export type ReloadEvent =
  | { readonly ok: true; readonly generation: number; readonly changed: boolean; readonly warnings: readonly string[] }
  /** The file could not be loaded; `servingGeneration` is the copy still in use (null: none, lookups tempfail). */
  | { readonly ok: false; readonly error: Error; readonly servingGeneration: number | null };

export interface DirectoryStatus {
  /** loaded: lookups answer from a good copy; never-loaded: every lookup is tempfail. */
  readonly state: 'loaded' | 'never-loaded';
  /** The last reload failed and an older copy is in use. */
  readonly stale: boolean;
  /** Counts successful loads that changed something; 0 before the first. */
  readonly generation: number;
  readonly loadedAt: Date | null;
  readonly lastError: Error | null;
  readonly warnings: readonly string[];
}

export interface UserDirectoryOptions {
  /** The users file; undefined: no users file, so no users (postmaster@ still exists). */
  readonly file?: string | undefined;
  /** domains.local; undefined treats every domain as local (the CLI's view of the file). */
  readonly localDomains?: readonly string[] | undefined;
  readonly localPartCase?: LocalPartCase;
  /** Watch the file's directory and reload on change. Default true when there is a file. */
  readonly watch?: boolean;
  /** Quiet time after the last change before reloading. Default 200 ms. */
  readonly debounceMs?: number;
  /** Every reload's outcome (for logs): a failure keeps the last good copy. */
  readonly onReload?: (event: ReloadEvent) => void;
}

/** Longer alias/forward chains are reported as loops (sendmail's MaxAliasRecursion is 10). */
export const MAX_ALIAS_DEPTH = 20;

interface PostmasterRoute {
  readonly targets?: readonly string[];
  readonly user?: MailboxUser;
}

/** One loaded generation of the users file, compiled into lookup tables. */
class DirectorySnapshot {
  readonly users: readonly MailboxUser[];
  /** Users by their address and by each of their own aliases. */
  readonly byKey = new Map<string, MailboxUser>();
  readonly aliases = new Map<string, readonly string[]>();
  readonly forwarding = new Map<string, { readonly mode: ForwardMode; readonly to: string }>();
  readonly postmaster: readonly string[];
  readonly firstAdmin: MailboxUser | null;

  constructor(data: UsersFileData, canon: (a: string) => CanonicalAddress | null) {
    const users: MailboxUser[] = [];
    for (const entry of data.users) {
      const c = canon(entry.address)!;
      const user: MailboxUser = {
        address: entry.address, key: c.key, localPart: c.localPart, domain: c.domain,
        quota: entry.quota, status: entry.status, aliases: entry.aliases, admin: entry.admin,
        passwordHash: entry.password, maildir: entry.maildir, builtin: false,
      };
      users.push(user);
      this.byKey.set(c.key, user);
      for (const alias of entry.aliases) this.byKey.set(canon(alias)!.key, user);
    }
    this.users = users;
    for (const a of data.aliases) this.aliases.set(canon(a.address)!.key, a.targets);
    for (const f of data.forwarding) this.forwarding.set(canon(f.address)!.key, { mode: f.mode, to: f.to });
    this.postmaster = data.postmaster;
    this.firstAdmin = users.find((u) => u.admin && u.status === 'active') ?? null;
  }

  postmasterRoute(c: CanonicalAddress): PostmasterRoute {
    if (this.postmaster.length > 0) return { targets: this.postmaster };
    if (this.firstAdmin) return { user: this.firstAdmin };
    return {
      user: {
        address: `postmaster@${c.domain}`, key: c.key, localPart: 'postmaster', domain: c.domain,
        quota: null, status: 'active', aliases: [], admin: false, passwordHash: null, maildir: null, builtin: true,
      },
    };
  }
}

type Loop = { readonly chain: readonly string[] };

/** Final targets of an expansion, each once (by comparison key), in first-seen order. */
class TargetCollector {
  readonly targets: AliasTarget[] = [];
  private readonly seen = new Set<string>();
  add(key: string, target: AliasTarget): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.targets.push(target);
  }
}

export class UserDirectory {
  private snapshot: DirectorySnapshot | null = null;
  private generation = 0;
  private loadedAt: Date | null = null;
  private lastError: Error | null = null;
  private lastText: string | null = null;
  private currentWarnings: readonly string[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly localDomains: ReadonlySet<string> | null;
  private readonly localPartCase: LocalPartCase;

  private constructor(private readonly options: UserDirectoryOptions) {
    this.localDomains = options.localDomains === undefined ? null : new Set(options.localDomains.map(canonicalDomain));
    this.localPartCase = options.localPartCase ?? 'insensitive';
  }

  /**
   * Loads the users file and starts watching it. Never throws for a bad file: check `status()`
   * (a directory that has not loaded answers every lookup with tempfail, and keeps trying on
   * each change and reload()).
   */
  static async open(options: UserDirectoryOptions): Promise<UserDirectory> {
    const directory = new UserDirectory(options);
    if (options.file !== undefined && (options.watch ?? true)) directory.startWatching(options.file);
    await directory.reload();
    return directory;
  }

  // ── lookups ───────────────────────────────────────────────────────────────────────────────

  lookup(address: string): LookupResult {
    const snapshot = this.snapshot;
    if (snapshot === null) {
      return { kind: 'tempfail', address, reason: `the users file has not loaded: ${this.lastError?.message ?? 'not loaded yet'}` };
    }
    let text = address.trim();
    if (text.startsWith('<') && text.endsWith('>')) text = text.slice(1, -1);
    if (isBarePostmaster(text)) {
      const domain = this.options.localDomains?.[0];
      if (domain === undefined) return { kind: 'unknown', address };
      text = `postmaster@${domain}`;
    }
    const c = this.canon(text);
    if (c === null) return { kind: 'unknown', address };

    const forward = snapshot.forwarding.get(c.key);
    if (forward !== undefined) {
      if (forward.mode === 'forward') {
        const loop = this.expand(snapshot, [forward.to], [c.key], new TargetCollector());
        if (loop) return { kind: 'loop', address, chain: loop.chain };
      }
      return { kind: 'forward', address, mode: forward.mode, to: forward.to };
    }
    if (!this.isLocal(c.domain)) return { kind: 'not-local', address };
    const user = snapshot.byKey.get(c.key);
    if (user !== undefined) return { kind: 'user', address, user };
    const targets = snapshot.aliases.get(c.key);
    if (targets !== undefined) return this.aliasResult(snapshot, address, c.key, targets);
    if (c.isPostmaster) {
      const route = snapshot.postmasterRoute(c);
      if (route.user) return { kind: 'user', address, user: route.user };
      return this.aliasResult(snapshot, address, c.key, route.targets!);
    }
    return { kind: 'unknown', address };
  }

  /** The user whose address or own alias `address` is (for SMTP AUTH), or null. */
  findUser(address: string): MailboxUser | null {
    const result = this.lookup(address);
    return result.kind === 'user' && !result.user.builtin ? result.user : null;
  }

  /**
   * The user when `password` is theirs. Always does one scrypt computation, so an unknown user
   * or one without a password takes as long as a wrong password.
   */
  async authenticate(address: string, password: string | Buffer): Promise<MailboxUser | null> {
    const user = this.findUser(address);
    const ok = await verifyPassword(password, user?.passwordHash ?? null);
    return ok && user !== null ? user : null;
  }

  /** Every user of the loaded copy, in file order (empty when never loaded). */
  users(): readonly MailboxUser[] {
    return this.snapshot?.users ?? [];
  }

  status(): DirectoryStatus {
    return {
      state: this.snapshot === null ? 'never-loaded' : 'loaded',
      stale: this.snapshot !== null && this.lastError !== null,
      generation: this.generation,
      loadedAt: this.loadedAt,
      lastError: this.lastError,
      warnings: this.currentWarnings,
    };
  }

  private canon(address: string): CanonicalAddress | null {
    return canonicalAddress(address, this.localPartCase);
  }

  private isLocal(domain: string): boolean {
    return this.localDomains === null || this.localDomains.has(domain);
  }

  private aliasResult(snapshot: DirectorySnapshot, address: string, key: string, targets: readonly string[]): LookupResult {
    const collector = new TargetCollector();
    const loop = this.expand(snapshot, targets, [key], collector);
    if (loop) return { kind: 'loop', address, chain: loop.chain };
    return { kind: 'alias', address, targets: collector.targets };
  }

  /** Expands `addresses` (reached along `path`) into `out`; a loop stops the expansion. */
  private expand(snapshot: DirectorySnapshot, addresses: readonly string[], path: readonly string[], out: TargetCollector): Loop | null {
    for (const address of addresses) {
      const c = this.canon(address);
      if (c === null) {
        out.add(`?${address}`, { kind: 'unknown', address });
        continue;
      }
      if (path.includes(c.key) || path.length >= MAX_ALIAS_DEPTH) return { chain: [...path, c.key] };
      const next = [...path, c.key];
      const forward = snapshot.forwarding.get(c.key);
      if (forward !== undefined) {
        if (forward.mode === 'refer') {
          out.add(c.key, { kind: 'refer', address, to: forward.to });
          continue;
        }
        const loop = this.expand(snapshot, [forward.to], next, out);
        if (loop) return loop;
        continue;
      }
      if (!this.isLocal(c.domain)) {
        out.add(c.key, { kind: 'remote', address });
        continue;
      }
      const user = snapshot.byKey.get(c.key);
      if (user !== undefined) {
        out.add(user.key, { kind: 'mailbox', address: user.address, user });
        continue;
      }
      const targets = snapshot.aliases.get(c.key);
      let loop: Loop | null = null;
      if (targets !== undefined) {
        loop = this.expand(snapshot, targets, next, out);
      } else if (c.isPostmaster) {
        const route = snapshot.postmasterRoute(c);
        if (route.user) out.add(route.user.key, { kind: 'mailbox', address: route.user.address, user: route.user });
        else loop = this.expand(snapshot, route.targets!, next, out);
      } else {
        out.add(c.key, { kind: 'unknown', address });
      }
      if (loop) return loop;
    }
    return null;
  }

  // ── loading ───────────────────────────────────────────────────────────────────────────────

  /** Reloads the users file now (the gateway calls this on SIGHUP). Reloads run one at a time. */
  reload(): Promise<ReloadEvent> {
    const run = this.chain.then(() => this.loadOnce());
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async loadOnce(): Promise<ReloadEvent> {
    let event: ReloadEvent;
    try {
      const file = this.options.file;
      const text = file === undefined ? '' : await readFile(file, 'utf8');
      if (this.snapshot !== null && text === this.lastText) {
        this.lastError = null;
        event = { ok: true, generation: this.generation, changed: false, warnings: this.currentWarnings };
      } else {
        const data = parseUsersFileText(text, file ?? '<no users file>', { localPartCase: this.localPartCase });
        const snapshot = new DirectorySnapshot(data, (a) => this.canon(a));
        this.snapshot = snapshot;
        this.lastText = text;
        this.generation += 1;
        this.loadedAt = new Date();
        this.lastError = null;
        this.currentWarnings = this.findWarnings(data);
        event = { ok: true, generation: this.generation, changed: true, warnings: this.currentWarnings };
      }
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.lastError = error;
      event = { ok: false, error, servingGeneration: this.snapshot === null ? null : this.generation };
    }
    this.options.onReload?.(event);
    return event;
  }

  /** What loads but will not work as written: entries outside the local domains, alias loops. */
  private findWarnings(data: UsersFileData): string[] {
    const warnings: string[] = [];
    const notLocal = (address: string, path: (string | number)[]): void => {
      const c = this.canon(address);
      if (c !== null && !this.isLocal(c.domain)) {
        warnings.push(`${formatConfigPath(path)}: ${c.domain} is not a local domain (domains.local), so "${address}" is never looked up here`);
      }
    };
    data.users.forEach((u, i) => {
      notLocal(u.address, ['users', i, 'address']);
      u.aliases.forEach((a, j) => notLocal(a, ['users', i, 'aliases', j]));
    });
    for (const a of data.aliases) {
      notLocal(a.address, ['aliases', a.address]);
      const result = this.lookup(a.address);
      if (result.kind === 'loop') warnings.push(`${formatConfigPath(['aliases', a.address])}: alias loop ${result.chain.join(' → ')}; mail to it is refused`);
    }
    for (const f of data.forwarding) {
      const result = this.lookup(f.address);
      if (result.kind === 'loop') warnings.push(`${formatConfigPath(['forwarding', f.address])}: forwarding loop ${result.chain.join(' → ')}; mail to it is refused`);
    }
    return warnings;
  }

  private startWatching(file: string): void {
    const name = basename(file);
    try {
      this.watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (changed === null || changed === name) this.scheduleReload();
      });
      // The directory went away or the watch broke: reload() (SIGHUP) still works.
      this.watcher.on('error', () => this.stopWatching());
    } catch {
      this.watcher = null; // no directory to watch (yet): reload() still works
    }
  }

  private scheduleReload(): void {
    if (this.closed) return;
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      if (!this.closed) void this.reload();
    }, this.options.debounceMs ?? 200);
    this.debounce.unref();
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  /** Stops watching and waits for a reload in progress. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWatching();
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = null;
    await this.chain;
  }
}
