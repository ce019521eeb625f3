/**
 * Mailbox quota with a Maildir++ `maildirsize` file (the format Courier and Dovecot keep too):
 *
 *   1073741824S          ← the quota definition: bytes
 *   52341 12             ← usage: bytes and messages (a recount writes one line)
 *   2210 1               ← one line appended per delivery (negative when an IMAP server expunges)
 *
 * Usage is the sum of the lines below the first; nobody re-sums the Maildir's files per check.
 * The file is recomputed from the files (cur/ and new/ of the Maildir and its `.Folder`s; the
 * size from `,S=` in the name, else stat) when it is missing, unreadable or malformed, when it
 * has grown past 5120 bytes, when its quota definition differs from the user's, and — as the
 * Maildir++ spec advises — when it says "over quota" and is older than 15 minutes (a client
 * that does not update it may have deleted mail).
 *
 * Concurrency: checks, recounts and delivery commits for one Maildir run one at a time in this
 * process ({@link MailboxQuota.withMailboxLock}); lines are appended with O_APPEND in one
 * write, so appends of other processes (the IMAP server) are never overwritten.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, open, readdir, readFile, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { sizeFromMaildirName } from './maildir-writer.js';
import { maildirPath, type MaildirOwner } from './mailbox-path.js';
import { exceedsQuota } from './recipient-check.js';

export const MAILDIRSIZE = 'maildirsize';
/** Maildir++: "If the maildirsize file is larger than 5120 bytes, recalculate". */
export const MAILDIRSIZE_MAX_BYTES = 5120;
/** Maildir++: an over-quota answer from a maildirsize older than this is double-checked by a recount. */
export const OVER_QUOTA_RECHECK_MS = 15 * 60 * 1000;

export interface MailboxUsage {
  readonly bytes: number;
  readonly messages: number;
}

export interface QuotaOwner extends MaildirOwner {
  /** Bytes, or null for no quota. */
  readonly quota: number | null;
}

export interface QuotaCheck {
  readonly status: 'ok' | 'over';
  /** Bytes in use (0 when there is no quota: usage is not tracked then). */
  readonly used: number;
  readonly quota: number | null;
  /** The size checked: the declared SIZE, or the message's real size at delivery. */
  readonly size: number;
}

export interface MailboxQuotaOptions {
  /** mailboxes.path (absolute). */
  readonly root: string;
  readonly overQuotaRecheckMs?: number;
}

interface Parsed {
  readonly quota: number | null;
  readonly usage: MailboxUsage;
}

/** Parses maildirsize text; null when it is malformed (then it is recounted). */
export function parseMaildirsize(text: string): Parsed | null {
  const lines = text.split('\n');
  if (lines.length < 1) return null;
  const definition = lines[0].trim();
  let quota: number | null = null;
  for (const part of definition.split(',')) {
    const m = /^(\d+)([SC])$/.exec(part.trim());
    if (part.trim() === '') continue;
    if (!m) return null;
    if (m[2] === 'S') quota = Number(m[1]) === 0 ? null : Number(m[1]); // 0: no limit
  }
  let bytes = 0;
  let messages = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') {
      if (i === lines.length - 1) continue;
      return null;
    }
    const m = /^\s*(-?\d+)\s+(-?\d+)\s*$/.exec(line);
    if (!m) return null; // e.g. a line torn by a crash mid-append
    bytes += Number(m[1]);
    messages += Number(m[2]);
  }
  return { quota, usage: { bytes: Math.max(0, bytes), messages: Math.max(0, messages) } };
}

/** The first line for a quota: `<bytes>S` (`0S`: no limit). */
export function quotaDefinition(quota: number | null): string {
  return quota === null ? '0S' : `${quota}S`;
}

/** Sums the messages of a Maildir and its Maildir++ folders from their names (or sizes). */
export async function countMaildir(maildir: string): Promise<MailboxUsage> {
  let bytes = 0;
  let messages = 0;
  const folders = [maildir];
  try {
    for (const entry of await readdir(maildir, { withFileTypes: true })) {
      if (entry.isDirectory() && entry.name.startsWith('.') && entry.name !== '.' && entry.name !== '..') {
        folders.push(join(maildir, entry.name));
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: 0, messages: 0 };
    throw err;
  }
  for (const folder of folders) {
    for (const sub of ['new', 'cur']) {
      let names: string[];
      try {
        names = await readdir(join(folder, sub));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        let size = sizeFromMaildirName(name);
        if (size === null) {
          try {
            size = (await stat(join(folder, sub, name))).size;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // moved or expunged meanwhile
            throw err;
          }
        }
        bytes += size;
        messages += 1;
      }
    }
  }
  return { bytes, messages };
}

/** Runs functions one at a time per key. */
class KeyedSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

interface CacheEntry {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly parsed: Parsed;
}

export class MailboxQuota {
  private readonly lock = new KeyedSerializer();
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly options: MailboxQuotaOptions) {}

  maildirOf(owner: MaildirOwner): string {
    return maildirPath(this.options.root, owner);
  }

  /** Runs `fn` while no other check, recount or commit of this Maildir runs in this process. */
  withMailboxLock<T>(maildir: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(maildir, fn);
  }

  /** `used + size > quota`: see {@link exceedsQuota} (no declared size counts as 1 byte). */
  async check(owner: QuotaOwner, declaredSize: number | null): Promise<QuotaCheck> {
    if (owner.quota === null) return { status: 'ok', used: 0, quota: null, size: declaredSize ?? 0 };
    const maildir = this.maildirOf(owner);
    return this.withMailboxLock(maildir, () => this.checkLocked(maildir, owner.quota!, declaredSize));
  }

  /** The usage as maildirsize has it (recounting when it must); call inside withMailboxLock. */
  async checkLocked(maildir: string, quota: number, size: number | null): Promise<QuotaCheck> {
    let { usage, mtimeMs } = await this.usageLocked(maildir, quota);
    if (exceedsQuota(usage.bytes, size, quota) && Date.now() - mtimeMs > (this.options.overQuotaRecheckMs ?? OVER_QUOTA_RECHECK_MS)) {
      usage = await this.recount(maildir, quota);
    }
    const status = exceedsQuota(usage.bytes, size, quota) ? 'over' : 'ok';
    return { status, used: usage.bytes, quota, size: size ?? 0 };
  }

  /** Current usage of a mailbox (recounted when maildirsize cannot be trusted). */
  async usage(owner: QuotaOwner): Promise<MailboxUsage> {
    const maildir = this.maildirOf(owner);
    return this.withMailboxLock(maildir, async () => (await this.usageLocked(maildir, owner.quota)).usage);
  }

  private async usageLocked(maildir: string, quota: number | null): Promise<{ usage: MailboxUsage; mtimeMs: number }> {
    const file = join(maildir, MAILDIRSIZE);
    let handle: FileHandle | undefined;
    try {
      handle = await open(file, 'r');
      const st = await handle.stat();
      if (st.size <= MAILDIRSIZE_MAX_BYTES) {
        const cached = this.cache.get(maildir);
        let parsed: Parsed | null;
        if (cached && cached.ino === st.ino && cached.size === st.size && cached.mtimeMs === st.mtimeMs) {
          parsed = cached.parsed;
        } else {
          parsed = parseMaildirsize(await handle.readFile('utf8'));
          if (parsed) this.cache.set(maildir, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, parsed });
        }
        if (parsed && parsed.quota === quota) return { usage: parsed.usage, mtimeMs: st.mtimeMs };
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    } finally {
      await handle?.close();
    }
    return { usage: await this.recount(maildir, quota), mtimeMs: Date.now() };
  }

  /**
   * Recounts the Maildir and replaces maildirsize (written in tmp/, renamed into place, as the
   * Maildir++ spec says). Call inside withMailboxLock.
   */
  async recount(maildir: string, quota: number | null): Promise<MailboxUsage> {
    const usage = await countMaildir(maildir);
    const tmpDir = join(maildir, 'tmp');
    const temp = join(tmpDir, `${MAILDIRSIZE}.${process.pid}.${randomBytes(6).toString('hex')}`);
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(`${quotaDefinition(quota)}\n${usage.bytes} ${usage.messages}\n`);
      } finally {
        await handle.close();
      }
      await rename(temp, join(maildir, MAILDIRSIZE));
      this.cache.delete(maildir);
    } catch (err) {
      // No Maildir yet (nothing delivered): usage is zero and there is nothing to write.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return usage;
  }

  /**
   * Appends one `<bytes> <count>` line (O_APPEND, one write). Call inside withMailboxLock, after
   * the delivery is in new/. A mailbox without maildirsize gets one by a recount (which already
   * includes the new message).
   */
  async record(maildir: string, quota: number | null, bytes: number, count: number): Promise<void> {
    const file = join(maildir, MAILDIRSIZE);
    let appendable = false;
    let handle: FileHandle | undefined;
    try {
      // Append only after a complete line: a torn or zero-filled tail (crash) means a recount.
      handle = await open(file, 'r');
      const { size } = await handle.stat();
      const last = Buffer.alloc(1);
      appendable = size > 0 && size <= MAILDIRSIZE_MAX_BYTES
        && (await handle.read(last, 0, 1, size - 1)).bytesRead === 1 && last[0] === 0x0a;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    } finally {
      await handle?.close();
    }
    if (appendable) await appendFile(file, `${bytes} ${count}\n`, { flag: 'a' });
    else await this.recount(maildir, quota);
  }
}

/**
 * Usage of a Maildir without changing anything: maildirsize when it is usable, else a count.
 * For tools (`postern users ls`); the gateway uses MailboxQuota, which also repairs the file.
 */
export async function peekUsage(maildir: string): Promise<MailboxUsage> {
  try {
    const file = join(maildir, MAILDIRSIZE);
    if ((await stat(file)).size <= MAILDIRSIZE_MAX_BYTES) {
      const parsed = parseMaildirsize(await readFile(file, 'utf8'));
      if (parsed !== null) return parsed.usage;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return countMaildir(maildir);
}
