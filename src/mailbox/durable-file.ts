/**
 * Durable file operations: fsync of a directory (so a name created, linked or renamed in it
 * survives a crash), and replacing a file atomically — a temp file in the same directory,
 * written and fsync'd, renamed over the target, then the directory fsync'd. A reader sees the
 * old file or the new one, never a mix, and after a crash one of the two is on disk whole.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** fsync of a directory: makes the names created or removed in it durable. */
export async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface AtomicWriteOptions {
  /** Mode of a new file; an existing file's mode is kept. Default 0o600. */
  readonly mode?: number;
}

/** Replaces (or creates) `file` with `data` atomically and durably. */
export async function writeFileAtomic(file: string, data: string | Buffer, options: AtomicWriteOptions = {}): Promise<void> {
  const directory = dirname(file);
  let mode = options.mode ?? 0o600;
  try {
    mode = (await stat(file)).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // A dot name the users-file watcher and Maildir readers both ignore.
  const temp = join(directory, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.chmod(mode); // the umask may have narrowed it
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncDirectory(directory);
}
