/**
 * `postern users ls|add|passwd|quota`: list and edit the users file. Edits run under a lock
 * file, keep the file's comments, are validated before writing (a file the gateway would refuse
 * is never written) and replace the file atomically; a running gateway picks them up by itself
 * (it watches the file; SIGHUP reloads too).
 *
 * The file: `--file FILE`, or `mailboxes.users_file` of `--config FILE`. `passwd` reads the
 * password from the terminal (twice, not echoed) or, when stdin is not a terminal, from the
 * first line of stdin — never from the command line, where `ps` and shell history would see it.
 *
 * Exit status: 0 done; 1 the edit failed (unknown or duplicate address, invalid users file,
 * locked); 2 bad usage (no users file named, a malformed argument).
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import { canonicalAddress } from '../mailbox/mailbox-address.js';
import type { PosternConfig } from '../config/config-schema.js';
import { loadConfigFile } from '../config/load-config.js';
import type { LocalPartCase } from '../config/mailboxes-schema.js';
import { maildirPath } from '../mailbox/mailbox-path.js';
import { peekUsage } from '../mailbox/mailbox-quota.js';
import { hashPassword } from '../mailbox/password-hash.js';
import {
  editUsersFile, formatQuota, MAILBOX_STATUSES, quotaSchema, QUOTA_EXPECTED, UsersFileEditor,
  type MailboxStatus, type UsersFileOptions,
} from '../mailbox/users-file.js';

/** A mistake in how the command was called: exit status 2. */
class UsageError extends Error {}
/** The edit cannot be done: exit status 1. */
class EditError extends Error {}

interface CommonOptions {
  readonly file?: string;
  readonly config?: string;
}

interface UsersContext {
  readonly file: string;
  readonly options: UsersFileOptions;
  /** mailboxes.path when a config was given (for usage in `ls`). */
  readonly mailRoot: string | null;
}

/**
 * The users file and the settings that go with it: `--file`, or the `mailboxes:` section of
 * `--config` (the whole file is loaded and checked; its errors are usage errors, exit status 2).
 */
function usersContext(opts: CommonOptions): UsersContext {
  let localPartCase: LocalPartCase = 'insensitive';
  let usersFile: string | undefined;
  let mailRoot: string | null = null;
  if (opts.config !== undefined) {
    let config: PosternConfig;
    try {
      config = loadConfigFile(opts.config);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`configuration errors:\n${err.message}`);
      throw err;
    }
    localPartCase = config.mailboxes.local_part_case;
    usersFile = config.mailboxes.users_file;
    mailRoot = config.mailboxes.path;
  }
  const file = opts.file ?? usersFile;
  if (file === undefined) {
    throw new UsageError('no users file: give --file FILE, or --config FILE with mailboxes.users_file set');
  }
  return { file: resolve(file), options: { localPartCase }, mailRoot };
}

function checkedAddress(address: string, what = 'address'): string {
  if (canonicalAddress(address, 'sensitive') === null) throw new UsageError(`${what} ${JSON.stringify(address)}: expected an address like alice@example.test`);
  return address.trim();
}

function checkedQuota(text: string): number | null {
  const parsed = quotaSchema.safeParse(text);
  if (!parsed.success) throw new UsageError(`quota ${JSON.stringify(text)}: ${QUOTA_EXPECTED}`);
  return parsed.data;
}

function checkedStatus(text: string): MailboxStatus {
  if (!(MAILBOX_STATUSES as readonly string[]).includes(text)) {
    throw new UsageError(`status ${JSON.stringify(text)}: expected one of ${MAILBOX_STATUSES.join(', ')}`);
  }
  return text as MailboxStatus;
}

/** Runs an action, turning its errors into a message on stderr and the exit status. */
async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`postern users: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof EditError) {
      process.stderr.write(`postern users: ${err.message}\n`);
      process.exitCode = 1;
    } else if (err instanceof ConfigError) {
      process.stderr.write(`postern users: the users file has errors, nothing was changed:\n${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`postern users: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  }
}

// ── passwords ───────────────────────────────────────────────────────────────────────────────

/** One line typed at the terminal without echo. */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolvePrompt, reject) => {
    let value = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolvePrompt(value);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new EditError('cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('');
        else value += ch;
      }
    };
    // Echo off before the prompt shows, so nothing typed after it is ever echoed.
    stdin.setEncoding('utf8');
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
    process.stderr.write(question);
  });
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    chunks.push(buffer);
    length += buffer.length;
    if (buffer.includes(0x0a) || length > 64 * 1024) break;
  }
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
}

/** The new password: typed twice at a terminal, or the first line of stdin. */
async function readNewPassword(): Promise<string> {
  let password: string;
  if (process.stdin.isTTY) {
    password = await promptHidden('New password: ');
    const again = await promptHidden('Retype new password: ');
    if (again !== password) throw new EditError('the passwords do not match; nothing was changed');
  } else {
    password = await readStdinLine();
  }
  if (password === '') throw new EditError('empty password; nothing was changed');
  return password;
}

// ── the commands ────────────────────────────────────────────────────────────────────────────

function withCommonOptions(command: Command): Command {
  return command
    .option('-f, --file <users.yaml>', 'the users file (default: mailboxes.users_file of --config)')
    .option('-c, --config <file>', 'configuration file (YAML): users file, local_part_case, mailbox path');
}

function requireUser(editor: UsersFileEditor, address: string): number {
  const index = editor.findUser(address);
  if (index < 0) {
    const elsewhere = editor.definitionOf(address);
    throw new EditError(elsewhere === null
      ? `no user ${address} in ${editor.file}`
      : `${address} is not a user but ${elsewhere}; only users have a password and a quota`);
  }
  return index;
}

async function listUsers(opts: CommonOptions & { json?: boolean }): Promise<void> {
  const context = usersContext(opts);
  if (!existsSync(context.file)) throw new EditError(`${context.file}: no such file (\`postern users add\` creates it)`);
  const editor = await UsersFileEditor.open(context.file, context.options);
  const { users, aliases, forwarding } = editor.data;
  const rows = await Promise.all(users.map(async (u) => {
    let used: number | null = null;
    if (context.mailRoot !== null) {
      const c = canonicalAddress(u.address, context.options.localPartCase)!;
      used = (await peekUsage(maildirPath(context.mailRoot, { localPart: c.localPart, domain: c.domain, maildir: u.maildir }))).bytes;
    }
    return { user: u, used };
  }));
  if (opts.json) {
    for (const { user: u, used } of rows) {
      process.stdout.write(`${JSON.stringify({
        kind: 'user', address: u.address, status: u.status, quota: u.quota, ...(used === null ? {} : { used }),
        admin: u.admin, password: u.password !== null, aliases: u.aliases,
      })}\n`);
    }
    for (const a of aliases) process.stdout.write(`${JSON.stringify({ kind: 'alias', address: a.address, targets: a.targets })}\n`);
    for (const f of forwarding) process.stdout.write(`${JSON.stringify({ kind: 'forward', address: f.address, mode: f.mode, to: f.to })}\n`);
    return;
  }
  if (users.length === 0) {
    process.stdout.write(`No users in ${context.file}.\n`);
  } else {
    const width = Math.max(7, ...users.map((u) => u.address.length));
    const showUsed = context.mailRoot !== null;
    process.stdout.write(`${'ADDRESS'.padEnd(width)}  ${'STATUS'.padEnd(8)}  ${'QUOTA'.padStart(8)}${showUsed ? `  ${'USED'.padStart(12)}` : ''}  ADMIN  PASSWORD  ALIASES\n`);
    for (const { user: u, used } of rows) {
      const usedColumn = showUsed ? `  ${String(used).padStart(12)}` : '';
      process.stdout.write(`${u.address.padEnd(width)}  ${u.status.padEnd(8)}  ${String(formatQuota(u.quota)).padStart(8)}${usedColumn}  ${(u.admin ? 'yes' : 'no').padEnd(5)}  ${(u.password !== null ? 'set' : '-').padEnd(8)}  ${u.aliases.join(', ') || '-'}\n`);
    }
  }
  for (const a of aliases) process.stdout.write(`alias    ${a.address} -> ${a.targets.join(', ')}\n`);
  for (const f of forwarding) process.stdout.write(`${f.mode.padEnd(8)} ${f.address} -> ${f.to}\n`);
  process.stdout.write(`${users.length} user(s), ${aliases.length} alias(es), ${forwarding.length} forwarding entr${forwarding.length === 1 ? 'y' : 'ies'}\n`);
}

export function registerUsersCommand(program: Command): void {
  const users = program.command('users').description('list and edit local mailbox users (the users file)');

  withCommonOptions(users.command('ls').description('list users, aliases and forwarding entries'))
    .option('--json', 'one JSON object per line')
    .action((opts: CommonOptions & { json?: boolean }) => run(() => listUsers(opts)));

  withCommonOptions(users.command('add').description('add a user (set the password with `users passwd`)'))
    .argument('<address>', 'the mailbox address, e.g. alice@example.test')
    .option('--quota <size>', 'quota: a size like 1GB, or none', 'none')
    .option('--status <status>', `${MAILBOX_STATUSES.join(' | ')}`, 'active')
    .option('--alias <address>', 'another address of this mailbox (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--admin', 'an administrator (postmaster@ goes to the first one unless `postmaster:` is set)')
    .action((address: string, opts: CommonOptions & { quota: string; status: string; alias: string[]; admin?: boolean }) => run(async () => {
      const context = usersContext(opts);
      const user = {
        address: checkedAddress(address),
        quota: checkedQuota(opts.quota),
        status: checkedStatus(opts.status),
        aliases: opts.alias.map((a) => checkedAddress(a, 'alias')),
        admin: opts.admin === true,
      };
      await editUsersFile(context.file, context.options, (editor) => {
        for (const a of [user.address, ...user.aliases]) {
          const existing = editor.definitionOf(a);
          if (existing !== null) throw new EditError(`${a} is already defined at ${existing}`);
        }
        editor.addUser(user);
      });
      process.stdout.write(`added ${user.address} (quota ${formatQuota(user.quota)}, ${user.status}) to ${context.file}\n`);
    }));

  withCommonOptions(users.command('passwd').description("set a user's password (read from the terminal or stdin, never from arguments)"))
    .argument('<address>', "the user's address")
    .action((address: string, opts: CommonOptions) => run(async () => {
      const context = usersContext(opts);
      // Say "no such user" before asking for a password.
      requireUser(await UsersFileEditor.open(context.file, context.options), checkedAddress(address));
      const hash = await hashPassword(await readNewPassword());
      await editUsersFile(context.file, context.options, (editor) => {
        editor.setUserField(requireUser(editor, address), 'password', hash);
      });
      process.stdout.write(`password set for ${address.trim()}\n`);
    }));

  withCommonOptions(users.command('quota').description("set a user's quota"))
    .argument('<address>', "the user's address")
    .argument('<size>', 'a size like 1GB, 500MB, a number of bytes, or none')
    .action((address: string, size: string, opts: CommonOptions) => run(async () => {
      const context = usersContext(opts);
      const quota = checkedQuota(size);
      checkedAddress(address);
      await editUsersFile(context.file, context.options, (editor) => {
        editor.setUserField(requireUser(editor, address), 'quota', formatQuota(quota));
      });
      process.stdout.write(`quota of ${address.trim()} is now ${formatQuota(quota)}\n`);
    }));
}
