/**
 * Plain Maildir delivery for local domains (https://cr.yp.to/proto/maildir.html) when there is
 * no users file (`recipients.valid` says who exists); with `mailboxes.users_file`, the gateway
 * plugs in MailboxTransport (mailbox-transport.ts: users, status, quotas, aliases, forwards):
 *
 *   <root>/<domain>/<local-part>/{tmp,new,cur}
 *
 * The message goes to tmp/<unique> (created exclusively), prefixed with Return-Path and
 * Delivered-To (RFC 5321 §4.4: the final delivery adds Return-Path), is fsync'd and closed,
 * renamed into new/, and new/ is fsync'd: only then does the delivery count. Domain and local
 * part are lower-cased; bytes that are unsafe in a file name are written as %XX.
 */
import { hostname as osHostname } from 'node:os';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeliveryFact } from '../bounce/delivery-fact.js';

/** One local delivery: who, from whom, and the body as the store streams it. */
export interface LocalDelivery {
  readonly queueId: string;
  readonly sender: string;
  readonly recipient: string;
  readonly body: () => AsyncIterable<Uint8Array>;
}

/** What the scheduler needs from a local mailbox transport. */
export interface LocalTransport {
  deliver(d: LocalDelivery): Promise<DeliveryFact>;
}

export interface MaildirDelivererOptions {
  readonly root: string;
  /** For unique names; default os.hostname(). */
  readonly hostname?: string;
}

const SAFE = /^[a-z0-9._+=-]$/;

/** A path segment for a domain or local part: lower case, nothing that walks the tree. */
export function maildirSegment(s: string): string {
  let out = '';
  for (const b of Buffer.from(s.toLowerCase(), 'utf8')) {
    const c = String.fromCharCode(b);
    out += SAFE.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out === '' || out.startsWith('.')) out = `%2E${out.slice(1)}`;
  return out;
}

async function fsyncDirectory(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A failed local write as a fact: no space (4.3.1), the file system's quota (4.2.2), other I/O (4.3.0); all soft. */
export function localWriteFailure(err: unknown): DeliveryFact {
  const code = err instanceof Error && 'code' in err ? String(err.code) : '';
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'ENOSPC') return { kind: 'local-failure', failure: 'no-space', detail };
  if (code === 'EDQUOT') return { kind: 'local-failure', failure: 'mailbox-full', detail };
  return { kind: 'local-failure', failure: 'io', detail };
}

export class MaildirDeliverer implements LocalTransport {
  private readonly hostname: string;
  private counter = 0;
  private readonly prepared = new Set<string>();

  constructor(private readonly opts: MaildirDelivererOptions) {
    this.hostname = (opts.hostname ?? osHostname()).replace(/[/:]/g, '_');
  }

  /** The Maildir of an address: <root>/<domain>/<local-part>. */
  maildirOf(address: string): string {
    const at = address.lastIndexOf('@');
    return join(this.opts.root, maildirSegment(address.slice(at + 1)), maildirSegment(address.slice(0, at)));
  }

  async deliver(d: LocalDelivery): Promise<DeliveryFact> {
    if (d.recipient.lastIndexOf('@') <= 0) return { kind: 'local-failure', failure: 'bad-address', detail: d.recipient };
    const dir = this.maildirOf(d.recipient);
    const now = Date.now();
    const unique = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${++this.counter}.${this.hostname}`;
    const tmp = join(dir, 'tmp', unique);
    let written = false;
    try {
      await this.prepare(dir);
      const fh = await open(tmp, 'wx', 0o600);
      written = true;
      let size = 0;
      try {
        const head = Buffer.from(`Return-Path: <${d.sender}>\r\nDelivered-To: ${d.recipient}\r\n`, 'utf8');
        await fh.write(head);
        size += head.length;
        for await (const chunk of d.body()) {
          await fh.write(chunk);
          size += chunk.length;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const name = `${unique},S=${size}`;
      await rename(tmp, join(dir, 'new', name));
      written = false;
      await fsyncDirectory(join(dir, 'new'));
      return { kind: 'local-delivered', detail: `delivered to maildir ${join(dir, 'new', name)}` };
    } catch (err) {
      if (written) await unlink(tmp).catch(() => undefined);
      return localWriteFailure(err);
    }
  }

  /** Creates the Maildir (and makes the new directories durable) the first time it is used. */
  private async prepare(dir: string): Promise<void> {
    if (this.prepared.has(dir)) return;
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
    await fsyncDirectory(dir);
    await fsyncDirectory(join(dir, '..'));
    this.prepared.add(dir);
  }
}
