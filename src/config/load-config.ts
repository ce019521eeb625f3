/**
 * Loading the config: read the YAML file, validate it against the schema, fill in defaults, and
 * report every problem with its path and line. Also the embedded default configuration that
 * `postern start` runs with when no file is given, and the check behind `postern config check`.
 *
 * Relative paths: in a config file they are relative to the directory of that file (so a config
 * means the same whatever directory Postern is started from); in the embedded default they are
 * relative to the process's working directory (so `npm start` keeps its queue in ./var/queue).
 * The loaded PosternConfig holds absolute paths only.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatConfigIssue, formatConfigPath, sortConfigIssues, type ConfigIssue } from './config-error.js';
import { configWarnings, posternConfigSchema, type ConfigPath, type PosternConfig } from './config-schema.js';
import { DELIVERY_DEFAULT_YAML } from './delivery-schema.js';
import { SENDER_AUTH_DEFAULT_YAML } from './sender-auth-schema.js';
import { DKIM_DEFAULT_YAML, resolveDkimPaths } from './dkim-schema.js';
import { ADMIN_DEFAULT_YAML } from './admin-schema.js';
import { MAILBOXES_DEFAULT_YAML, resolveMailboxesPaths } from './mailboxes-schema.js';
import { POLICY_DEFAULT_YAML } from './policy-schema.js';
import { knownKeysAt } from './schema-keys.js';
import { didYouMean } from './suggest.js';
import { locateInYaml, type PointAt } from './yaml-location.js';

/** The name issues of the embedded default are reported under. */
export const DEFAULT_CONFIG_NAME = '<default>';

/**
 * The embedded default configuration, and a commented reference of every setting with its
 * default value. Parsing it gives what an empty file gives plus {@link QUICK_START_YAML}, the
 * README's example.test mailboxes (a test holds them equal).
 */
export const DEFAULT_CONFIG_YAML = `\
# Postern configuration: the embedded default, what \`postern start\` runs with no --config.
# Copy it to a file, change what you need, and run \`postern config check FILE\`.
# Every section and key is optional; a key left out (or left empty) takes the value shown,
# except domains.local and recipients.valid: their example.test values are the quick start's
# (mail to anyone@example.test lands in ./var/mail/example.test/anyone/new/); left out, both are [].
# Sizes: 20MB, 512KB, 1GiB (K, M, G are multiples of 1024) or a number of bytes.
# Durations: 250ms, 60s, 5m, 1h30m, 1d, or a number of seconds.
# Relative paths are relative to the config file's directory (here: the working directory).

# hostname: mx.example.test          # our name in the greeting and headers; default: the host name

store:
  kind: sqlite                       # the embedded durable queue
  path: ./var/queue
  min_free_space: 100MB              # less free disk than this: 452 4.3.1

listeners:                           # each needs a unique name and address
  - name: inbound
    listen: 127.0.0.1:2525           # host:port; host is an IP address or localhost; IPv6: "[::1]:2525"
    banner: Postern                  # greeting: 220 <hostname> ESMTP <banner>
    max_connections: 1000            # one more: 421 4.7.0 at the greeting
    tls: none                        # none | starttls | implicit (port 465 style); needs tls.cert/key
    require_tls: false               # true: 530 5.7.0 until STARTTLS
    auth: none                       # none | optional | required (530 5.7.0 before AUTH); PLAIN, LOGIN
    auth_without_tls: false          # offer AUTH before TLS too (otherwise 538 5.7.11)
    sender_login_match: true         # after AUTH, MAIL FROM must be the user's address or alias (553 5.7.1)

limits:
  max_message_size: 100MB            # advertised in EHLO SIZE; larger: 552 5.3.4
  max_recipients: 1000               # per message, at least 100; one more: 452 4.5.3
  max_errors: 4                      # bad commands; then 421 4.7.0 and close
  max_commands_without_transaction: 100   # NOOP, RSET, VRFY, HELP…; then 421 4.7.0
  max_messages_per_connection: 1000  # the next MAIL gets 421 4.7.0
  max_header_lines: 1000             # more: 552 5.3.4
  max_header_size: 1MB               # more: 552 5.3.4
  session_time_cap: 15m              # then 421 4.4.2
  min_data_rate: 500                 # bytes/s while sending DATA; slower: 421 4.4.2 (slowloris)

timeouts:                            # RFC 5321 §4.5.3.2; shorter ones get a warning
  command: 5m                        # waiting for the next command; then 421 4.4.2
  data_block: 3m                     # waiting for the next block of DATA; then 421 4.4.2
  dns: 5s                            # one DNS lookup

shutdown:
  grace: 30s                         # after SIGTERM, how long in-flight DATA may finish

logging:
  level: info                        # fatal, error, warn, info, debug, trace, silent

domains:
  local: [example.test]              # Postern is the final destination for these (mailboxes: below);
                                     # example.test is the quick start's (README); default: []
  relay: {}                          # accepted from anyone, sent to a fixed next hop, e.g.
#   partner.test: "smtp://127.0.0.2:2526"
#   other.test: { next_hop: "smtp://[::1]:25", tls: required }   # tls: none | opportunistic | required

tls:                                 # certificate for STARTTLS and implicit-TLS listeners; SIGHUP reloads it
#  cert: ./tls/cert.pem
#  key: ./tls/key.pem
  min_version: TLSv1.2               # TLSv1 … TLSv1.3
#  ciphers: "..."                    # OpenSSL cipher list for TLS 1.2 and below

auth:
  failure_delay: 1s                  # a failed AUTH is answered after this, times the failures so far from its IP
  max_failures: 3                    # failed AUTHs in one session, then 421 4.7.0
  max_failures_per_ip: 10            # failed AUTHs from one IP within failure_window, across sessions:
                                     # then 421 4.7.0, and AUTH from it is refused until the window passes
  failure_window: 1h                 # how long a failed AUTH counts against its IP (and grows the delay)

dns:
  servers: []                        # "host" or "host:port"; empty = the system's resolvers
  cache_ttl: 30s                     # answers are cached this long (temporary failures never)

${POLICY_DEFAULT_YAML}
${DELIVERY_DEFAULT_YAML}
${SENDER_AUTH_DEFAULT_YAML}
${DKIM_DEFAULT_YAML}
${ADMIN_DEFAULT_YAML}
${MAILBOXES_DEFAULT_YAML}
reply_overrides: {}                  # by reply id (\`postern codes\`), e.g.
#  rcpt.rate-limited: { code: 452, text: "Too many recipients, try again later" }
#  rcpt.too-many: { code: 552, allow_class_change: true }   # 4xx → 5xx only when said so
`;

/**
 * The settings in which DEFAULT_CONFIG_YAML differs from an empty file: the README's quick
 * start, where mail from 127.0.0.1 to anyone@example.test lands in ./var/mail/example.test/anyone/new/.
 */
export const QUICK_START_YAML = `\
domains: { local: [example.test] }
recipients: { valid: ["@example.test"] }
`;

export interface ParseConfigOptions {
  /** Directory relative paths are resolved against; default: the config file's directory. */
  readonly baseDir?: string;
  /** Called for each warning of a config that loads (e.g. a timeout below the RFC minimum). */
  readonly onWarning?: (issue: ConfigIssue, formatted: string) => void;
}

/** Everything found in one config text: the config when it has no errors, and every issue. */
export interface ConfigAnalysis {
  readonly config: PosternConfig | undefined;
  /** Errors and warnings, in file order. */
  readonly issues: readonly ConfigIssue[];
}

// ── zod issues → config issues ──────────────────────────────────────────────────────────────

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  object: 'a mapping (key: value)',
  array: 'a list',
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

/** Plain-language messages for the zod issues our own schemas do not word themselves. */
const configErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
    case 'too_small': {
      const minimum = Number(issue.minimum);
      if (issue.origin === 'string') return minimum <= 1 ? 'must not be empty' : `must be at least ${minimum} characters`;
      if (issue.origin === 'array') return `needs at least ${minimum} ${minimum === 1 ? 'entry' : 'entries'}`;
      return issue.inclusive === false ? `must be more than ${minimum}` : `must be at least ${minimum}`;
    }
    case 'too_big': {
      const maximum = Number(issue.maximum);
      if (issue.origin === 'string') return `must be at most ${maximum} characters`;
      if (issue.origin === 'array') return `must have at most ${maximum} entries`;
      return issue.inclusive === false ? `must be less than ${maximum}` : `must be at most ${maximum}`;
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      const expected = values.length === 1 ? values[0] : `one of ${values.join(', ')}`;
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    default:
      return undefined;
  }
};

interface LocatedIssue {
  readonly severity: ConfigIssue['severity'];
  readonly path: ConfigPath;
  readonly message: string;
  readonly pointAt: PointAt;
}

function fromZodIssues(issues: readonly z.core.$ZodIssue[]): LocatedIssue[] {
  const located: LocatedIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(posternConfigSchema, path);
      for (const key of issue.keys) {
        const hint = didYouMean(key, known) || (known.length > 0 ? `; known keys: ${known.join(', ')}` : '');
        located.push({ severity: 'error', path: [...path, key], message: `unknown key${hint}`, pointAt: 'key' });
      }
      continue;
    }
    const pointAt: PointAt = issue.code === 'custom' && issue.params?.['at'] === 'key' ? 'key' : 'value';
    located.push({ severity: 'error', path, message: issue.message, pointAt });
  }
  return located;
}

// ── parsing ─────────────────────────────────────────────────────────────────────────────────

/** `key:` with nothing after it means the default, as if the key were absent. */
function withoutEmptyValues(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutEmptyValues);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      if (inner !== null) out[key] = withoutEmptyValues(inner);
    }
    return out;
  }
  return value;
}

/** The config with its relative paths made absolute against `baseDir`. */
function resolvePaths(config: PosternConfig, baseDir: string): PosternConfig {
  return {
    ...config,
    store: { ...config.store, path: resolve(baseDir, config.store.path) },
    dkim: resolveDkimPaths(config.dkim, baseDir),
    mailboxes: resolveMailboxesPaths(config.mailboxes, baseDir),
    tls: {
      ...config.tls,
      cert: config.tls.cert === undefined ? undefined : resolve(baseDir, config.tls.cert),
      key: config.tls.key === undefined ? undefined : resolve(baseDir, config.tls.key),
    },
  };
}

/** `listen: [::1]:2525` is a YAML flow list followed by junk; say how to write it. */
const UNQUOTED_IPV6 = /:\s*\[[0-9A-Fa-f:.]*\]:\d/;

function yamlIssues(text: string, doc: Document, lineCounter: LineCounter): ConfigIssue[] {
  const lines = text.split(/\r?\n/);
  const toIssue = (severity: ConfigIssue['severity'], e: { message: string; pos: [number, number] }): ConfigIssue => {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    const hint = UNQUOTED_IPV6.test(lines[line - 1] ?? '') ? '; quote an IPv6 address: "[::1]:2525"' : '';
    return { severity, path: '', message: `YAML: ${e.message.split('\n')[0]}${hint}`, line, column: col };
  };
  return [...doc.errors.map((e) => toIssue('error', e)), ...doc.warnings.map((w) => toIssue('warning', w))];
}

/** Validates one config text and returns the config (if it has no errors) and every issue. */
export function analyseConfigText(text: string, fileName: string, options: Pick<ParseConfigOptions, 'baseDir'> = {}): ConfigAnalysis {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const syntaxIssues = yamlIssues(text, doc, lineCounter);
  if (syntaxIssues.some((i) => i.severity === 'error')) {
    return { config: undefined, issues: sortConfigIssues(syntaxIssues) };
  }
  let data: unknown;
  try {
    data = withoutEmptyValues(doc.toJS({ maxAliasCount: 100 }) ?? {});
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { config: undefined, issues: [...syntaxIssues, { severity: 'error', path: '', message: `YAML: ${message}` }] };
  }

  const place = (found: LocatedIssue): ConfigIssue => {
    const position = locateInYaml(doc, lineCounter, found.path, found.pointAt);
    return {
      severity: found.severity,
      path: formatConfigPath(found.path),
      message: found.message,
      ...(position === undefined ? {} : { line: position.line, column: position.column }),
    };
  };

  const parsed = posternConfigSchema.safeParse(data, { error: configErrorMap });
  if (!parsed.success) {
    const issues = fromZodIssues(parsed.error.issues).map(place);
    return { config: undefined, issues: sortConfigIssues([...syntaxIssues, ...issues]) };
  }
  const warnings = configWarnings(parsed.data).map((w) => place({ ...w, severity: 'warning', pointAt: 'value' }));
  const baseDir = options.baseDir ?? dirname(resolve(fileName));
  return { config: resolvePaths(parsed.data, baseDir), issues: sortConfigIssues([...syntaxIssues, ...warnings]) };
}

function configOrThrow(analysis: ConfigAnalysis, fileName: string, options: ParseConfigOptions): PosternConfig {
  const errors = analysis.issues.filter((i) => i.severity === 'error');
  if (analysis.config === undefined || errors.length > 0) throw new ConfigError(fileName, errors);
  for (const warning of analysis.issues) {
    if (warning.severity === 'warning') options.onWarning?.(warning, formatConfigIssue(warning, fileName));
  }
  return analysis.config;
}

/** Parses config text; `fileName` names it in errors and (by default) anchors relative paths. Throws ConfigError. */
export function parseConfigText(text: string, fileName: string, options: ParseConfigOptions = {}): PosternConfig {
  return configOrThrow(analyseConfigText(text, fileName, options), fileName, options);
}

function readConfigText(file: string): string | ConfigIssue {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err && err.code === 'ENOENT' ? 'no such file' : String(err instanceof Error ? err.message : err);
    return { severity: 'error', path: '', message: `cannot read the config file: ${reason}` };
  }
}

/** Reads and validates a config file. Throws ConfigError listing every problem. */
export function loadConfigFile(file: string, options: ParseConfigOptions = {}): PosternConfig {
  const text = readConfigText(file);
  if (typeof text !== 'string') throw new ConfigError(file, [text]);
  return parseConfigText(text, file, options);
}

/** Every error and warning in a config file, in file order (`postern config check`); empty = all good. */
export function checkConfigFile(file: string): ConfigIssue[] {
  const text = readConfigText(file);
  if (typeof text !== 'string') return [text];
  return [...analyseConfigText(text, file).issues];
}

/** The embedded default: 127.0.0.1:2525, SQLite queue in ./var/queue under the working directory. */
export function defaultConfig(): PosternConfig {
  return parseConfigText(DEFAULT_CONFIG_YAML, DEFAULT_CONFIG_NAME, { baseDir: process.cwd() });
}
