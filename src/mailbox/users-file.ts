/**
 * The users file: local mailboxes, aliases and the forwarding table, in YAML.
 *
 *   # who gets postmaster@<every local domain> (optional; see user-directory.ts)
 *   postmaster: alice@example.test
 *   users:
 *     - address: alice@example.test
 *       quota: 1GB                     # a size (K/M/G are multiples of 1024), bytes, or none
 *       status: active                 # active | disabled (550 5.2.1) | locked (450 4.2.1)
 *       aliases: [a.smith@example.test]  # more addresses of this mailbox
 *       admin: true                    # postmaster@ goes here when nobody else is named
 *       password: scrypt$32768$8$1$…   # `postern users passwd`; for SMTP AUTH
 *     - address: bob@example.test      # quota none, status active, no password
 *   aliases:                           # one address → one or more local or remote addresses
 *     sales@example.test: [alice@example.test, bob@example.test, rep@partner.test]
 *     info@example.test: sales@example.test
 *   forwarding:                        # users who moved
 *     carol@example.test: { mode: forward, to: carol@new.test }   # 251 2.1.5, we relay
 *     dave@example.test: { mode: refer, to: dave@elsewhere.test } # 551 5.1.6, not accepted
 *
 * Every problem is reported with its path and line, like the config file
 * (`users.yaml:7:14: users[1].quota: expected a size like 1GB, or none`). An address is defined
 * once across users, their aliases, aliases and forwarding (compared as the directory compares
 * them, so the check depends on local_part_case).
 *
 * Edits (`postern users …`) go through {@link editUsersFile}: under a lock file, on the parsed
 * YAML document (comments and layout survive), validated before writing, written atomically.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type YAMLSeq } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatConfigPath, sortConfigIssues, type ConfigIssue } from '../config/config-error.js';
import { knownKeysAt } from '../config/schema-keys.js';
import { didYouMean } from '../config/suggest.js';
import { formatSize, sizeInBytes } from '../config/units.js';
import { locateInYaml, type PointAt } from '../config/yaml-location.js';
import { parseMailbox } from '../smtp/mailbox.js';
import { writeFileAtomic } from './durable-file.js';
import { canonicalAddress } from './mailbox-address.js';
import type { LocalPartCase } from '../config/mailboxes-schema.js';
import { isPasswordHash, PASSWORD_HASH_EXPECTED } from './password-hash.js';

export const MAILBOX_STATUSES = ['active', 'disabled', 'locked'] as const;
export type MailboxStatus = (typeof MAILBOX_STATUSES)[number];

export const FORWARD_MODES = ['forward', 'refer'] as const;
export type ForwardMode = (typeof FORWARD_MODES)[number];

export interface UserEntry {
  /** As written in the file. */
  readonly address: string;
  /** Bytes, or null for no quota. */
  readonly quota: number | null;
  readonly status: MailboxStatus;
  /** More addresses that reach this mailbox. */
  readonly aliases: readonly string[];
  readonly admin: boolean;
  /** `scrypt$N$r$p$salt$hash`, or null when the user has no password (no SMTP AUTH). */
  readonly password: string | null;
  /** Maildir relative to mailboxes.path, when not the default `<domain>/<local-part>`. */
  readonly maildir: string | null;
}

export interface AliasEntry {
  readonly address: string;
  /** One or more local or remote addresses, in file order. */
  readonly targets: readonly string[];
}

export interface ForwardEntry {
  readonly address: string;
  readonly mode: ForwardMode;
  readonly to: string;
}

export interface UsersFileData {
  /** Who receives postmaster@ of the local domains that define no postmaster of their own. */
  readonly postmaster: readonly string[];
  readonly users: readonly UserEntry[];
  readonly aliases: readonly AliasEntry[];
  readonly forwarding: readonly ForwardEntry[];
}

export interface UsersFileOptions {
  /** How local parts compare (mailboxes.local_part_case); decides what counts as a duplicate. */
  readonly localPartCase: LocalPartCase;
}

// ── schema ──────────────────────────────────────────────────────────────────────────────────

export const ADDRESS_EXPECTED = 'expected an address like alice@example.test';
export const QUOTA_EXPECTED = 'expected a size like 1GB (K/KB/KiB, M/MB/MiB, G/GB/GiB are multiples of 1024; a plain number is bytes), or none';

const addressSchema = z.string({
  error: (issue) => (issue.input === undefined ? 'is required' : `${ADDRESS_EXPECTED}, got ${describeValue(issue.input)}`),
}).refine((s) => parseMailbox(s.trim()) !== null, {
  error: (issue) => `${ADDRESS_EXPECTED}, got ${JSON.stringify(issue.input)}`,
}).transform((s) => s.trim());

const addressListSchema = z.union([addressSchema.transform((a) => [a]), z.array(addressSchema).min(1)]);

/** `none` → null; a size → bytes (more than 0). */
export const quotaSchema = z.union([z.string(), z.number()], { error: QUOTA_EXPECTED }).transform((input, ctx) => {
  if (typeof input === 'string' && input.trim().toLowerCase() === 'none') return null;
  const bytes = sizeInBytes(input);
  if (bytes === null || bytes === 0) {
    ctx.addIssue({ code: 'custom', message: `${QUOTA_EXPECTED}, got ${JSON.stringify(input)}`, input });
    return z.NEVER;
  }
  return bytes;
});

/** The quota the way the file writes it: "none", "1GB", "1536KB", 12345. */
export function formatQuota(quota: number | null): string | number {
  if (quota === null) return 'none';
  const text = formatSize(quota);
  return /^\d+$/.test(text) ? quota : text;
}

const maildirSchema = z.string().min(1).refine(
  (p) => !isAbsolute(p) && !p.split(/[\\/]/).some((segment) => segment === '..'),
  { error: 'expected a path relative to mailboxes.path, without ".."' },
);

const userSchema = z.strictObject({
  address: addressSchema,
  quota: quotaSchema.default(null),
  status: z.enum(MAILBOX_STATUSES).default('active'),
  aliases: z.union([addressSchema.transform((a) => [a]), z.array(addressSchema)]).default([]),
  admin: z.boolean().default(false),
  password: z.string().refine(isPasswordHash, { error: PASSWORD_HASH_EXPECTED }).optional(),
  maildir: maildirSchema.optional(),
});

const forwardSchema = z.strictObject({
  mode: z.enum(FORWARD_MODES),
  to: addressSchema,
});

export const usersFileSchema = z.strictObject({
  postmaster: addressListSchema.optional(),
  users: z.array(userSchema).default([]),
  aliases: z.record(z.string(), addressListSchema).default({}),
  forwarding: z.record(z.string(), forwardSchema).default({}),
});

// ── parsing ─────────────────────────────────────────────────────────────────────────────────

type Path = readonly (string | number)[];

interface FoundIssue {
  readonly path: Path;
  readonly message: string;
  readonly pointAt: PointAt;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  object: 'a mapping (key: value)', array: 'a list', string: 'text', number: 'a number', boolean: 'true or false',
};

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Plain-language messages for the zod issues the schema does not word itself. */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
    case 'too_small':
      return issue.origin === 'array' ? 'needs at least one address' : 'must not be empty';
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      return `expected ${values.length === 1 ? values[0] : `one of ${values.join(', ')}`}, got ${describeValue(issue.input)}`;
    }
    case 'invalid_union':
      return undefined;
    default:
      return undefined;
  }
};

function fromZod(issues: readonly z.core.$ZodIssue[]): FoundIssue[] {
  const found: FoundIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(usersFileSchema, path);
      for (const key of issue.keys) {
        const hint = didYouMean(key, known) || (known.length > 0 ? `; known keys: ${known.join(', ')}` : '');
        found.push({ path: [...path, key], message: `unknown key${hint}`, pointAt: 'key' });
      }
      continue;
    }
    let message = issue.message;
    // A union of "one address" and "a list of addresses": say what either branch wanted.
    if (issue.code === 'invalid_union') {
      const inner = issue.errors.flat().find((e) => e.code !== 'invalid_type') ?? issue.errors.flat()[0];
      message = inner?.message ?? ADDRESS_EXPECTED;
      const innerPath = inner?.path.filter((s): s is string | number => typeof s !== 'symbol') ?? [];
      found.push({ path: [...path, ...innerPath], message, pointAt: 'value' });
      continue;
    }
    found.push({ path, message, pointAt: 'value' });
  }
  return found;
}

/** `key:` with nothing after it means the default, as in the config file. */
function withoutEmptyValues(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutEmptyValues);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) if (inner !== null) out[key] = withoutEmptyValues(inner);
    return out;
  }
  return value;
}

type ParsedSchema = z.output<typeof usersFileSchema>;

/** Definitions after the schema: every address defined once; keys of aliases/forwarding are addresses. */
function crossCheck(parsed: ParsedSchema, options: UsersFileOptions): FoundIssue[] {
  const issues: FoundIssue[] = [];
  const definedAt = new Map<string, string>();
  const define = (address: string, path: Path, pointAt: PointAt): void => {
    const canonical = canonicalAddress(address, options.localPartCase);
    if (canonical === null) {
      issues.push({ path, message: `${ADDRESS_EXPECTED}, got ${JSON.stringify(address)}`, pointAt });
      return;
    }
    const earlier = definedAt.get(canonical.key);
    if (earlier !== undefined) {
      issues.push({ path, message: `"${address}" is already defined at ${earlier}`, pointAt });
      return;
    }
    definedAt.set(canonical.key, formatConfigPath(path));
  };
  parsed.users.forEach((user, i) => {
    define(user.address, ['users', i, 'address'], 'value');
    user.aliases.forEach((alias, j) => define(alias, ['users', i, 'aliases', j], 'value'));
  });
  for (const key of Object.keys(parsed.aliases)) define(key, ['aliases', key], 'key');
  for (const key of Object.keys(parsed.forwarding)) define(key, ['forwarding', key], 'key');

  const maildirs = new Map<string, number>();
  parsed.users.forEach((user, i) => {
    if (user.maildir === undefined) return;
    const normalized = user.maildir.replace(/\/+$/, '');
    const earlier = maildirs.get(normalized);
    if (earlier !== undefined) {
      issues.push({ path: ['users', i, 'maildir'], message: `is already the maildir of users[${earlier}]`, pointAt: 'value' });
    } else maildirs.set(normalized, i);
  });
  return issues;
}

function toData(parsed: ParsedSchema): UsersFileData {
  return {
    postmaster: parsed.postmaster ?? [],
    users: parsed.users.map((u) => ({
      address: u.address, quota: u.quota, status: u.status, aliases: u.aliases, admin: u.admin,
      password: u.password ?? null, maildir: u.maildir ?? null,
    })),
    aliases: Object.entries(parsed.aliases).map(([address, targets]) => ({ address: address.trim(), targets })),
    forwarding: Object.entries(parsed.forwarding).map(([address, f]) => ({ address: address.trim(), mode: f.mode, to: f.to })),
  };
}

export interface UsersFileAnalysis {
  readonly data: UsersFileData | undefined;
  /** Errors in file order, each with its path and (where the file has the node) its line. */
  readonly issues: readonly ConfigIssue[];
}

function analyseDocument(doc: Document, lineCounter: LineCounter, options: UsersFileOptions): UsersFileAnalysis {
  const syntax: ConfigIssue[] = doc.errors.map((e) => {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    return { severity: 'error', path: '', message: `YAML: ${e.message.split('\n')[0]}`, line, column: col };
  });
  if (syntax.length > 0) return { data: undefined, issues: sortConfigIssues(syntax) };
  let raw: unknown;
  try {
    raw = withoutEmptyValues(doc.toJS({ maxAliasCount: 100 }) ?? {});
  } catch (err) {
    return { data: undefined, issues: [{ severity: 'error', path: '', message: `YAML: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  const place = (found: FoundIssue): ConfigIssue => {
    const position = locateInYaml(doc, lineCounter, found.path, found.pointAt);
    return {
      severity: 'error', path: formatConfigPath(found.path), message: found.message,
      ...(position === undefined ? {} : { line: position.line, column: position.column }),
    };
  };
  const parsed = usersFileSchema.safeParse(raw, { error: errorMap });
  if (!parsed.success) return { data: undefined, issues: sortConfigIssues(fromZod(parsed.error.issues).map(place)) };
  const cross = crossCheck(parsed.data, options);
  if (cross.length > 0) return { data: undefined, issues: sortConfigIssues(cross.map(place)) };
  return { data: toData(parsed.data), issues: [] };
}

function parseYaml(text: string): { doc: Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  return { doc, lineCounter };
}

/** Validates users-file text: the data when it has no errors, and every error. */
export function analyseUsersFileText(text: string, options: UsersFileOptions): UsersFileAnalysis {
  const { doc, lineCounter } = parseYaml(text);
  return analyseDocument(doc, lineCounter, options);
}

/** Parses users-file text; throws a ConfigError naming `fileName`, the paths and the lines. */
export function parseUsersFileText(text: string, fileName: string, options: UsersFileOptions): UsersFileData {
  const analysis = analyseUsersFileText(text, options);
  if (analysis.data === undefined) throw new ConfigError(fileName, analysis.issues);
  return analysis.data;
}

/** Reads and parses the users file; a missing or unreadable file is a ConfigError too. */
export async function readUsersFile(file: string, options: UsersFileOptions): Promise<UsersFileData> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err);
    throw new ConfigError(file, [{ severity: 'error', path: '', message: `cannot read the users file: ${reason}` }]);
  }
  return parseUsersFileText(text, file, options);
}

// ── editing ─────────────────────────────────────────────────────────────────────────────────

/** What a new users file starts with. */
export const NEW_USERS_FILE = `\
# Postern users. \`postern users ls|add|passwd|quota\` edit this file and keep its comments.
#   users:      - { address, quota: <size> | none, status: active | disabled | locked,
#                   aliases: [addresses], admin: true | false, password: <scrypt hash> }
#   aliases:    address: target, or [targets] (local or remote)
#   forwarding: address: { mode: forward | refer, to: address }
#   postmaster: address, or [addresses] (default: the first active admin)
users: []
`;

export interface NewUser {
  readonly address: string;
  readonly quota: number | null;
  readonly status: MailboxStatus;
  readonly aliases?: readonly string[];
  readonly admin?: boolean;
  readonly password?: string;
}

/** The users file as an editable YAML document; changes keep comments and layout. */
export class UsersFileEditor {
  private constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly options: UsersFileOptions,
    /** The file's data as it was read (validated). */
    readonly data: UsersFileData,
  ) {}

  /** Reads `file` (or starts a new one when it does not exist); refuses a file with errors. */
  static async open(file: string, options: UsersFileOptions): Promise<UsersFileEditor> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      text = NEW_USERS_FILE;
    }
    const { doc, lineCounter } = parseYaml(text);
    const analysis = analyseDocument(doc, lineCounter, options);
    if (analysis.data === undefined) throw new ConfigError(file, analysis.issues);
    return new UsersFileEditor(file, doc, options, analysis.data);
  }

  /** Index of the user whose address (not alias) is `address`, compared as the directory compares; -1 if none. */
  findUser(address: string): number {
    const wanted = canonicalAddress(address, this.options.localPartCase);
    if (wanted === null) return -1;
    return this.data.users.findIndex((u) => canonicalAddress(u.address, this.options.localPartCase)?.key === wanted.key);
  }

  /** Where `address` is defined already (users, aliases or forwarding), or null. */
  definitionOf(address: string): string | null {
    const wanted = canonicalAddress(address, this.options.localPartCase)?.key;
    if (wanted === undefined) return null;
    const same = (a: string): boolean => canonicalAddress(a, this.options.localPartCase)?.key === wanted;
    for (const [i, u] of this.data.users.entries()) {
      if (same(u.address)) return `users[${i}].address`;
      const j = u.aliases.findIndex(same);
      if (j >= 0) return `users[${i}].aliases[${j}]`;
    }
    const alias = this.data.aliases.find((a) => same(a.address));
    if (alias) return formatConfigPath(['aliases', alias.address]);
    const forward = this.data.forwarding.find((f) => same(f.address));
    if (forward) return formatConfigPath(['forwarding', forward.address]);
    return null;
  }

  private usersSeq(): YAMLSeq {
    let seq = this.doc.get('users', true);
    if (!isSeq(seq)) {
      seq = this.doc.createNode([]);
      this.doc.set('users', seq);
    }
    const users = seq as YAMLSeq;
    users.flow = false;
    return users;
  }

  addUser(user: NewUser): void {
    const entry: Record<string, unknown> = {
      address: user.address,
      quota: formatQuota(user.quota),
      status: user.status,
    };
    if (user.aliases && user.aliases.length > 0) entry['aliases'] = [...user.aliases];
    if (user.admin) entry['admin'] = true;
    if (user.password !== undefined) entry['password'] = user.password;
    const node = this.doc.createNode(entry);
    if (isMap(node)) node.flow = false;
    this.usersSeq().add(node);
  }

  /** Sets one field of users[index]. */
  setUserField(index: number, key: 'quota' | 'status' | 'password' | 'admin', value: string | number | boolean): void {
    this.doc.setIn(['users', index, key], value);
  }

  toString(): string {
    return this.doc.toString({ lineWidth: 0 });
  }

  /** Validates the edited text (a file the gateway would refuse is never written) and writes it atomically. */
  async save(): Promise<UsersFileData> {
    const text = this.toString();
    const data = parseUsersFileText(text, this.file, this.options);
    await writeFileAtomic(this.file, text, { mode: 0o600 });
    return data;
  }
}

/** How long an edit waits for another one to finish before giving up. */
const LOCK_WAIT_MS = 10_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding `<file>.lock` (created with O_EXCL, holding our pid). A lock whose process
 * is gone is taken over; a live one is waited for, up to 10 s.
 */
export async function withUsersFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) {
        await unlink(lock).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${file} is being edited by another process (pid ${pid || '?'}, lock ${lock})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

/** Opens the users file under its lock, lets `edit` change it, and saves it (an `edit` that throws changes nothing). */
export async function editUsersFile<T>(
  file: string,
  options: UsersFileOptions,
  edit: (editor: UsersFileEditor) => Promise<T> | T,
): Promise<T> {
  return withUsersFileLock(file, async () => {
    const editor = await UsersFileEditor.open(file, options);
    const result = await edit(editor);
    await editor.save();
    return result;
  });
}
