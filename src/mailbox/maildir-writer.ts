/**
 * Maildir delivery (https://cr.yp.to/proto/maildir.html), the format Dovecot and Courier read:
 *
 *   1. a unique name `<time>.M<usec>P<pid>Q<counter>.<host>`;
 *   2. the message written to `tmp/<name>` (created exclusively), then fsync'd and closed;
 *   3. hard-linked to `new/<name>,S=<size>` (link never replaces an existing file) and the tmp
 *      name removed — rename where the file system has no hard links;
 *   4. `new/` fsync'd: only now does the delivery count.
 *
 * A crash at any point leaves either nothing in new/ or the whole message there; a file left in
 * tmp/ is removed by {@link cleanupMaildirTmp} once it is 36 hours old, as the spec says.
 * `,S=<size>` is the file's size in bytes, which quota-aware IMAP servers (Dovecot, Courier)
 * read instead of stat'ing every file.
 *
 * Bodies are a Buffer or an async iterable of Buffers (a Readable works), written as they come:
 * memory stays bounded whatever the message size. The bytes are written as given (CRLF stays
 * CRLF; Dovecot and Courier read both).
 *
 * Delivery is two steps so that a quota check can sit between them under a per-mailbox lock
 * (see mailbox-delivery.ts): `writeTmp()` (slow, concurrent), then `commit()` or `discard()`.
 */
import { hostname as osHostname } from 'node:os';
import { link, lstat, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDirectory } from './durable-file.js';

export type MessageBody = Buffer | Uint8Array | AsyncIterable<Buffer | Uint8Array | string>;

export interface MaildirWriterOptions {
  /** The host part of unique names; default os.hostname(). */
  readonly hostname?: string;
  /** Remove tmp/ files older than this on the first delivery to a Maildir in this process. Default 36 h; 0 = never. */
  readonly tmpMaxAgeMs?: number;
}

export interface WriteOptions {
  /** Bytes written before the body (e.g. `Return-Path:` and `Delivered-To:` lines). */
  readonly prefix?: Buffer | string;
}

/** A message written to tmp/, not yet delivered. */
export interface PendingMaildirMessage {
  readonly maildir: string;
  readonly tmpPath: string;
  /** The unique name (no `,S=`). */
  readonly uniqueName: string;
  readonly size: number;
}

/** A message in new/. */
export interface DeliveredMaildirMessage {
  readonly maildir: string;
  /** Absolute path of the file in new/. */
  readonly path: string;
  /** Its name in new/: `<unique>,S=<size>`. */
  readonly name: string;
  readonly size: number;
}

/** The spec's 36 hours: a tmp/ file not touched for that long is a leftover of a crash. */
export const MAILDIR_TMP_MAX_AGE_MS = 36 * 3600 * 1000;

const SUBDIRS = ['tmp', 'new', 'cur'] as const;

/** The host part of a unique name: "/" and ":" escaped as the spec says, "," as Dovecot does. */
export function maildirHostPart(host: string): string {
  return host.replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054');
}

/** The size in a Maildir name's `,S=<n>`, or null. */
export function sizeFromMaildirName(name: string): number | null {
  const m = /,S=(\d+)(?:[,:]|$)/.exec(name);
  return m ? Number(m[1]) : null;
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as NodeJS.ErrnoException)?.code ?? '');
}

async function* chunksOf(body: MessageBody): AsyncIterable<Uint8Array> {
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  for await (const chunk of body) yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
}

export class MaildirWriter {
  private readonly host: string;
  private counter = 0;
  /** Maildirs known to exist (ensured in this process). */
  private readonly ready = new Set<string>();

  constructor(private readonly options: MaildirWriterOptions = {}) {
    this.host = maildirHostPart(options.hostname ?? osHostname());
  }

  /** A name unique to this delivery: time, microseconds, pid, per-process counter, host. */
  uniqueName(now = performance.timeOrigin + performance.now()): string {
    const seconds = Math.floor(now / 1000);
    const usec = Math.floor((now * 1000) % 1_000_000);
    this.counter += 1;
    return `${seconds}.M${usec}P${process.pid}Q${this.counter}.${this.host}`;
  }

  /**
   * Creates `maildir` with cur/, new/ and tmp/ when they are missing, fsync'ing every directory
   * that got a new entry, so the mailbox survives a crash right after its first delivery.
   */
  async ensureMaildir(maildir: string): Promise<void> {
    if (this.ready.has(maildir)) return;
    const first = await mkdir(maildir, { recursive: true, mode: 0o700 });
    let created = first !== undefined;
    for (const sub of SUBDIRS) {
      try {
        await mkdir(join(maildir, sub), { mode: 0o700 });
        created = true;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
    }
    if (created) {
      await fsyncDirectory(maildir);
      // Each directory mkdir created, up to the first one that existed before.
      if (first !== undefined) {
        for (let dir = maildir; dir !== dirname(first); dir = dirname(dir)) await fsyncDirectory(dirname(dir));
      }
    }
    const maxAge = this.options.tmpMaxAgeMs ?? MAILDIR_TMP_MAX_AGE_MS;
    if (!created && maxAge > 0) await cleanupMaildirTmp(maildir, { maxAgeMs: maxAge });
    this.ready.add(maildir);
  }

  /** Writes the message to tmp/ and fsyncs it; nothing is in new/ yet. */
  async writeTmp(maildir: string, body: MessageBody, options: WriteOptions = {}): Promise<PendingMaildirMessage> {
    await this.ensureMaildir(maildir);
    for (let attempt = 0; ; attempt++) {
      const uniqueName = this.uniqueName();
      const tmpPath = join(maildir, 'tmp', uniqueName);
      let handle;
      try {
        handle = await open(tmpPath, 'wx', 0o600);
      } catch (err) {
        if (isErrno(err, 'EEXIST') && attempt < 5) continue;
        if (isErrno(err, 'ENOENT') && attempt < 5) {
          // The Maildir was removed behind our back: create it again.
          this.ready.delete(maildir);
          await this.ensureMaildir(maildir);
          continue;
        }
        throw err;
      }
      let size = 0;
      try {
        try {
          if (options.prefix !== undefined && options.prefix.length > 0) {
            const prefix = typeof options.prefix === 'string' ? Buffer.from(options.prefix, 'utf8') : options.prefix;
            await handle.write(prefix);
            size += prefix.length;
          }
          for await (const chunk of chunksOf(body)) {
            if (chunk.length === 0) continue;
            await handle.write(chunk);
            size += chunk.length;
          }
          await handle.sync();
        } finally {
          await handle.close();
        }
      } catch (err) {
        await unlink(tmpPath).catch(() => undefined);
        throw err;
      }
      return { maildir, tmpPath, uniqueName, size };
    }
  }

  /** Moves a pending message into new/ (never over an existing file) and fsyncs new/. */
  async commit(pending: PendingMaildirMessage): Promise<DeliveredMaildirMessage> {
    const newDir = join(pending.maildir, 'new');
    for (let attempt = 0; ; attempt++) {
      const base = attempt === 0 ? pending.uniqueName : this.uniqueName();
      const name = `${base},S=${pending.size}`;
      const path = join(newDir, name);
      try {
        await link(pending.tmpPath, path);
        await unlink(pending.tmpPath);
      } catch (err) {
        if (isErrno(err, 'EEXIST') && attempt < 5) continue;
        if (!isErrno(err, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK')) throw err;
        // No hard links here: rename, after making sure the name is free.
        if (await exists(path)) continue;
        await rename(pending.tmpPath, path);
      }
      await fsyncDirectory(newDir);
      return { maildir: pending.maildir, path, name, size: pending.size };
    }
  }

  /** Removes a pending message that is not to be delivered. */
  async discard(pending: PendingMaildirMessage): Promise<void> {
    await unlink(pending.tmpPath).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
  }

  /** writeTmp() then commit(): one delivery, without quota. */
  async deliver(maildir: string, body: MessageBody, options: WriteOptions = {}): Promise<DeliveredMaildirMessage> {
    const pending = await this.writeTmp(maildir, body, options);
    try {
      return await this.commit(pending);
    } catch (err) {
      await this.discard(pending).catch(() => undefined);
      throw err;
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

export interface CleanupOptions {
  /** Default 36 hours. */
  readonly maxAgeMs?: number;
  /** Default Date.now(). */
  readonly now?: number;
}

/**
 * Removes files in `<maildir>/tmp/` not accessed or modified for `maxAgeMs` (36 h per the
 * spec): leftovers of deliveries that crashed. A delivery in progress is younger, so it is safe
 * to run at any time. Returns the names removed.
 */
export async function cleanupMaildirTmp(maildir: string, options: CleanupOptions = {}): Promise<string[]> {
  const maxAge = options.maxAgeMs ?? MAILDIR_TMP_MAX_AGE_MS;
  const now = options.now ?? Date.now();
  const tmp = join(maildir, 'tmp');
  let names: string[];
  try {
    names = await readdir(tmp);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names) {
    const path = join(tmp, name);
    try {
      const st = await stat(path);
      if (!st.isFile()) continue;
      if (now - Math.max(st.atimeMs, st.mtimeMs) < maxAge) continue;
      await unlink(path);
      removed.push(name);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
  return removed;
}

/**
 * {@link cleanupMaildirTmp} for every Maildir under a mail root laid out as
 * `<root>/<domain>/<local-part>/` (and their Maildir++ `.Folder` subfolders). For a periodic job.
 */
export async function cleanupMailRootTmp(root: string, options: CleanupOptions = {}): Promise<string[]> {
  const removed: string[] = [];
  const subdirs = async (dir: string): Promise<string[]> => {
    try {
      return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => join(dir, d.name));
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return [];
      throw err;
    }
  };
  for (const domain of await subdirs(root)) {
    for (const maildir of await subdirs(domain)) {
      const folders = (await subdirs(maildir)).filter((d) => /\/\.[^/]+$/.test(d));
      for (const dir of [maildir, ...folders]) {
        for (const name of await cleanupMaildirTmp(dir, options)) removed.push(join(dir, 'tmp', name));
      }
    }
  }
  return removed;
}
