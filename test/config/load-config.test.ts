/**
 * Loading the one YAML config file: the embedded default, defaults for what is left out, relative
 * paths, and errors that name the exact path, line and column of what is wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError, formatConfigIssue, type ConfigIssue } from '../../src/config/config-error.js';
import {
  analyseConfigText, checkConfigFile, DEFAULT_CONFIG_YAML, defaultConfig, loadConfigFile, parseConfigText, QUICK_START_YAML,
} from '../../src/config/load-config.js';
import { writeTempConfig, yamlLines } from './temp-config.js';

/** The ConfigError that loading `text` from a temp file throws. */
function loadError(text: string): { file: string; error: ConfigError } {
  const file = writeTempConfig(text);
  try {
    loadConfigFile(file);
  } catch (error) {
    if (error instanceof ConfigError) return { file, error };
    throw error;
  }
  assert.fail('the config loaded, but an error was expected');
}

/** The issues' essentials, for exact comparison. */
function brief(issues: readonly ConfigIssue[]): [string, number | undefined, number | undefined][] {
  return issues.map((i) => [i.path, i.line, i.column]);
}

test('the embedded default is valid: 127.0.0.1:2525, SQLite under ./var/queue of the working directory', () => {
  const config = defaultConfig();
  assert.equal(config.hostname, hostname());
  assert.deepEqual(config.store, { kind: 'sqlite', path: join(process.cwd(), 'var', 'queue'), min_free_space: 100 * 1024 ** 2 });
  assert.deepEqual(config.listeners, [
    { name: 'inbound', listen: { host: '127.0.0.1', port: 2525 }, banner: 'Postern', max_connections: 1000, tls: 'none', require_tls: false, auth: 'none', auth_without_tls: false, sender_login_match: true },
  ]);
  assert.deepEqual(config.limits, {
    max_message_size: 100 * 1024 ** 2,
    max_recipients: 1000,
    max_errors: 4,
    max_commands_without_transaction: 100,
    max_messages_per_connection: 1000,
    max_header_lines: 1000,
    max_header_size: 1024 ** 2,
    session_time_cap: 15 * 60_000,
    min_data_rate: 500,
  });
  assert.deepEqual(config.timeouts, { command: 300_000, data_block: 180_000, dns: 5000 });
  assert.deepEqual(config.shutdown, { grace: 30_000 });
  assert.deepEqual(config.logging, { level: 'info' });
  assert.deepEqual(config.reply_overrides, {});
});

test('the embedded default text says exactly what the schema defaults are', () => {
  const baseDir = process.cwd();
  // Every value shown is the default, except the quick start's example.test mailboxes.
  assert.deepEqual(parseConfigText(DEFAULT_CONFIG_YAML, 'default.yaml', { baseDir }), parseConfigText(QUICK_START_YAML, 'quick.yaml', { baseDir }));
  const empty = parseConfigText('', 'empty.yaml', { baseDir });
  assert.deepEqual([empty.domains.local, empty.recipients.valid], [[], []]);
  // And with everything commented out it is still the same config.
  assert.deepEqual(parseConfigText('# nothing\n', 'x.yaml', { baseDir }), parseConfigText('{}', 'y.yaml', { baseDir }));
});

test('a file sets what it names; the rest keeps its defaults', () => {
  const file = writeTempConfig(yamlLines(
    'hostname: mx.example.test',
    'listeners:',
    '  - name: inbound',
    '    listen: 0.0.0.0:25',
    '    banner: Example Mail',
    '  - { name: submission, listen: "[::1]:587", max_connections: 50 }',
    'limits:',
    '  max_message_size: 20MB',
    '  max_recipients: 100',
    'timeouts: { dns: 250ms }',
    'logging:',
    '  level: debug',
    'reply_overrides:',
    '  rcpt.rate-limited: { code: 452 }',
  ));
  const config = loadConfigFile(file);
  assert.equal(config.hostname, 'mx.example.test');
  assert.deepEqual(config.listeners, [
    { name: 'inbound', listen: { host: '0.0.0.0', port: 25 }, banner: 'Example Mail', max_connections: 1000, tls: 'none', require_tls: false, auth: 'none', auth_without_tls: false, sender_login_match: true },
    { name: 'submission', listen: { host: '::1', port: 587 }, banner: 'Postern', max_connections: 50, tls: 'none', require_tls: false, auth: 'none', auth_without_tls: false, sender_login_match: true },
  ]);
  assert.equal(config.limits.max_message_size, 20 * 1024 ** 2);
  assert.equal(config.limits.max_recipients, 100);
  assert.equal(config.limits.max_errors, 4);
  assert.deepEqual(config.timeouts, { command: 300_000, data_block: 180_000, dns: 250 });
  assert.equal(config.logging.level, 'debug');
  assert.deepEqual(config.reply_overrides, { 'rcpt.rate-limited': { code: 452 } });
});

test('relative paths in a config file are relative to its directory, not the working directory', () => {
  const file = writeTempConfig(yamlLines('store:', '  path: ./spool/queue'));
  assert.equal(loadConfigFile(file).store.path, join(dirname(file), 'spool', 'queue'));
  assert.equal(loadConfigFile(writeTempConfig('{}')).store.path.endsWith(join('var', 'queue')), true);
  const absolute = writeTempConfig(yamlLines('store: { path: /srv/postern/queue }'));
  assert.equal(loadConfigFile(absolute).store.path, '/srv/postern/queue');
});

test('an empty value means the default', () => {
  const file = writeTempConfig(yamlLines('hostname: mx.example.test', 'limits:', '  # max_recipients: 5', 'timeouts:', '  command:'));
  const config = loadConfigFile(file);
  assert.equal(config.limits.max_recipients, 1000);
  assert.equal(config.timeouts.command, 300_000);
});

test('an unknown key is named with its path and points at the key', () => {
  const { file, error } = loadError(yamlLines(
    'hostname: mx.example.test',
    'limits:',
    '  max_errors: 4',
    '  max_recipents: 500',
  ));
  assert.deepEqual(brief(error.issues), [['limits.max_recipents', 4, 3]]);
  assert.equal(error.issues[0].message, 'unknown key; did you mean "max_recipients"?');
  assert.equal(error.message, `${file}:4:3: limits.max_recipents: unknown key; did you mean "max_recipients"?`);
});

test('an unknown key with no close match lists the known ones', () => {
  const { error } = loadError(yamlLines('shutdown:', '  wibble: 1'));
  assert.deepEqual(brief(error.issues), [['shutdown.wibble', 2, 3]]);
  assert.equal(error.issues[0].message, 'unknown key; known keys: grace');
});

test('a typo\'d section is named, with the section it probably means', () => {
  const { file, error } = loadError(yamlLines(
    'hostname: mx.example.test',
    'listners:',
    '  - name: inbound',
    '    listen: 127.0.0.1:2525',
  ));
  assert.deepEqual(brief(error.issues), [['listners', 2, 1]]);
  assert.equal(formatConfigIssue(error.issues[0], file), `${file}:2:1: listners: unknown key; did you mean "listeners"?`);
});

test('a bad listen address names listeners[1].listen and its line', () => {
  const { file, error } = loadError(yamlLines(
    'listeners:',
    '  - name: inbound',
    '    listen: 127.0.0.1:2525',
    '  - name: submission',
    '    listen: mail.example.test:587',
  ));
  assert.deepEqual(brief(error.issues), [['listeners[1].listen', 5, 13]]);
  assert.ok(
    error.message.startsWith(`${file}:5:13: listeners[1].listen: expected host:port like 127.0.0.1:2525`),
    error.message,
  );
  assert.match(error.issues[0].message, /must be an IP address or localhost, not "mail.example.test"/);
});

test('listen addresses: what is accepted and what is refused', () => {
  const accepted: [string, string, number][] = [
    ['127.0.0.1:2525', '127.0.0.1', 2525],
    ['localhost:25', 'localhost', 25],
    ['"[::1]:2525"', '::1', 2525],
    ['"[::]:25"', '::', 25],
    ['0.0.0.0:0', '0.0.0.0', 0],
  ];
  for (const [listen, host, port] of accepted) {
    const config = parseConfigText(yamlLines('listeners:', `  - { name: a, listen: ${listen} }`), 'x.yaml');
    assert.deepEqual(config.listeners[0].listen, { host, port }, listen);
  }
  const refused = ['127.0.0.1', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:http', '::1:25', '[127.0.0.1]:25', 'example.test:25', '2525', '[::1]:99999', ' '];
  for (const listen of refused) {
    const { error } = loadError(yamlLines('listeners:', `  - name: a`, `    listen: ${JSON.stringify(listen)}`));
    assert.deepEqual(brief(error.issues), [['listeners[0].listen', 3, 13]], listen);
    assert.match(error.issues[0].message, /^expected host:port like 127\.0\.0\.1:2525/, listen);
  }
});

test('an unquoted IPv6 address is a YAML error that says to quote it', () => {
  const { error } = loadError(yamlLines('listeners:', '  - name: a', '    listen: [::1]:2525'));
  assert.equal(error.issues.length, 1);
  assert.equal(error.issues[0].line, 3);
  assert.match(error.issues[0].message, /quote an IPv6 address/);
});

test('max_recipients below 100 is refused (RFC 5321 §4.5.3.1.8); 100 is fine', () => {
  const { file, error } = loadError(yamlLines('limits:', '  max_recipients: 99'));
  assert.deepEqual(brief(error.issues), [['limits.max_recipients', 2, 19]]);
  assert.match(error.message, new RegExp(`^${file}:2:19: limits\\.max_recipients: must be at least 100 \\(RFC 5321 §4\\.5\\.3\\.1\\.8`));
  assert.equal(parseConfigText(yamlLines('limits:', '  max_recipients: 100'), 'x.yaml').limits.max_recipients, 100);
  const { error: notWhole } = loadError(yamlLines('limits:', '  max_recipients: 150.5'));
  assert.equal(notWhole.issues[0].message, 'expected a whole number');
});

test('duplicate listener names point at the second one', () => {
  const { error } = loadError(yamlLines(
    'listeners:',
    '  - name: inbound',
    '    listen: 127.0.0.1:2525',
    '  - name: inbound',
    '    listen: 127.0.0.1:2526',
  ));
  assert.deepEqual(brief(error.issues), [['listeners[1].name', 4, 11]]);
  assert.equal(error.issues[0].message, 'duplicate listener name "inbound" (also listeners[0].name)');
});

test('listen addresses that would share a socket are refused', () => {
  const collisions: [string, string][] = [
    ['127.0.0.1:2525', '127.0.0.1:2525'],
    ['0.0.0.0:25', '127.0.0.1:25'],
    ['"[::]:25"', '127.0.0.1:25'],
    ['localhost:25', '"[::1]:25"'],
    ['"[::1]:25"', '"[0:0::1]:25"'],
  ];
  for (const [first, second] of collisions) {
    const { error } = loadError(yamlLines('listeners:', `  - { name: a, listen: ${first} }`, `  - { name: b, listen: ${second} }`));
    assert.deepEqual(brief(error.issues).map(([path, line]) => [path, line]), [['listeners[1].listen', 3]], `${first} ${second}`);
    assert.match(error.issues[0].message, /collides with listeners\[0\]\.listen/);
  }
  const apart = parseConfigText(
    yamlLines('listeners:', '  - { name: a, listen: 127.0.0.1:25 }', '  - { name: b, listen: 127.0.0.2:25 }', '  - { name: c, listen: 127.0.0.1:0 }', '  - { name: d, listen: 127.0.0.1:0 }'),
    'x.yaml',
  );
  assert.equal(apart.listeners.length, 4);
});

test('a YAML syntax error is a ConfigError with line and column', () => {
  const { file, error } = loadError(yamlLines(
    'hostname: mx.example.test',
    'limits:',
    '  max_errors: [4',
    'timeouts: {}',
  ));
  assert.equal(error.issues.length >= 1, true);
  assert.equal(error.issues[0].path, '');
  assert.equal(typeof error.issues[0].line, 'number');
  assert.match(error.issues[0].message, /^YAML: /);
  assert.ok(error.message.startsWith(`${file}:${error.issues[0].line}:${error.issues[0].column}: YAML: `), error.message);

  const duplicate = loadError(yamlLines('hostname: a.example', 'logging: {}', 'hostname: b.example'));
  assert.deepEqual(brief(duplicate.error.issues), [['', 3, 1]]);
  assert.match(duplicate.error.issues[0].message, /^YAML: Map keys must be unique/);
});

test('every problem in a file is reported at once, in file order', () => {
  const { error } = loadError(yamlLines(
    'hostname: "not a host name"',
    'store:',
    '  min_free_space: lots',
    'listeners:',
    '  - name: inbound',
    '  - name: other',
    '    listen: 127.0.0.1:25',
    '    bannr: hi',
    'logging: { level: verbose }',
    'timeouts: { command: soon }',
    'reply_overrides:',
    '  rcpt.to-many: { code: 452 }',
    '  rcpt.too-many: { code: 552 }',
  ));
  assert.deepEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`), [
    '1:11 hostname: expected a host name like mx.example.test',
    '3:19 store.min_free_space: expected a size like 20MB (K/KB/KiB, M/MB/MiB, G/GB/GiB are multiples of 1024; a plain number is bytes), got "lots"',
    '5:5 listeners[0].listen: is required',
    '8:5 listeners[1].bannr: unknown key; did you mean "banner"?',
    '9:19 logging.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "verbose"',
    '10:22 timeouts.command: expected a duration like 5m (units ms, s, m, h, d, combinable as 1h30m; a plain number is seconds), got "soon"',
    '12:3 reply_overrides["rcpt.to-many"]: unknown reply id "rcpt.to-many"; did you mean "rcpt.too-many"?',
    '13:26 reply_overrides["rcpt.too-many"].code: "rcpt.too-many" is a transient (4xx) reply (452); 552 would make it permanent (5xx): set allow_class_change: true to do that on purpose',
  ]);
});

test('wrong types are named in plain words', () => {
  const { error } = loadError(yamlLines('limits: 5', 'listeners: { name: a }', 'shutdown:', '  grace: [1, 2]'));
  assert.deepEqual(error.issues.map((i) => `${i.path}: ${i.message}`), [
    'limits: expected a mapping (key: value), got 5',
    'listeners: expected a list, got a mapping',
    'shutdown.grace: expected a duration like 5m (units ms, s, m, h, d, combinable as 1h30m; a plain number is seconds)',
  ]);
  const { error: notMapping } = loadError('- just\n- a list\n');
  assert.deepEqual(brief(notMapping.issues), [['', 1, 1]]);
  assert.equal(notMapping.issues[0].message, 'expected a mapping (key: value), got a list');
});

test('timeouts below the RFC 5321 minimums load, with a warning at their line', () => {
  const file = writeTempConfig(yamlLines('timeouts:', '  command: 1m', '  data_block: 3m'));
  const warnings: string[] = [];
  const config = loadConfigFile(file, { onWarning: (_issue, formatted) => warnings.push(formatted) });
  assert.equal(config.timeouts.command, 60_000);
  assert.deepEqual(warnings, [
    `${file}:2:12: warning: timeouts.command: 1m is below the 5m minimum of RFC 5321 §4.5.3.2.7; clients on slow links may be cut off`,
  ]);
  assert.deepEqual(checkConfigFile(file).map((i) => [i.severity, i.path, i.line]), [['warning', 'timeouts.command', 2]]);
});

test('config check: a good file has no issues; a missing file is one issue', () => {
  assert.deepEqual(checkConfigFile(writeTempConfig(DEFAULT_CONFIG_YAML)), []);
  const missing = join(dirname(writeTempConfig('{}')), 'no-such.yaml');
  assert.deepEqual(checkConfigFile(missing), [{ severity: 'error', path: '', message: 'cannot read the config file: no such file' }]);
  assert.throws(() => loadConfigFile(missing), (error: unknown) =>
    error instanceof ConfigError && error.message === `${missing}: cannot read the config file: no such file`);
});

test('parseConfigText names the given file in its errors', () => {
  assert.throws(() => parseConfigText('limits: { max_errors: 0 }\n', 'inline.yaml'), (error: unknown) =>
    error instanceof ConfigError && error.file === 'inline.yaml' && error.message === 'inline.yaml:1:23: limits.max_errors: must be at least 1');
});

test('an unknown key inside a reply override is named with the keys an override has', () => {
  const { error } = loadError(yamlLines('reply_overrides:', '  rcpt.too-many: { code: 452, colour: red }'));
  assert.deepEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`), [
    '2:31 reply_overrides["rcpt.too-many"].colour: unknown key; known keys: code, enhanced, text, allow_class_change',
  ]);
});

test('mailboxes: paths resolved against the config file; LMTP over TCP accepted, over a unix socket refused; recipients.valid unused with a users file', () => {
  const c = parseConfigText('mailboxes: { path: mail, users_file: etc/users.yaml, over_quota: hard }\n', 'x.yaml', { baseDir: '/srv/postern' });
  assert.deepEqual(c.mailboxes, {
    path: '/srv/postern/mail', users_file: '/srv/postern/etc/users.yaml', over_quota: 'hard', local_part_case: 'insensitive', transport: 'maildir',
  });
  assert.equal(defaultConfig().mailboxes.path, join(process.cwd(), 'var', 'mail'));
  const lmtp = analyseConfigText('mailboxes: { transport: lmtp, lmtp_next_hop: "lmtp://127.0.0.1:24" }\n', 'x.yaml', { baseDir: '/tmp' });
  assert.deepEqual(lmtp.issues, []);
  assert.deepEqual(lmtp.config?.mailboxes.lmtp_next_hop, { kind: 'tcp', host: '127.0.0.1', port: 24, url: 'lmtp://127.0.0.1:24' });
  const unix = analyseConfigText('mailboxes: { transport: lmtp, lmtp_next_hop: "unix:/run/dovecot/lmtp" }\n', 'x.yaml', { baseDir: '/tmp' });
  assert.equal(unix.config, undefined);
  assert.deepEqual(unix.issues.map((i) => `${i.path}: ${i.message}`), ['mailboxes.lmtp_next_hop: LMTP over a unix socket is not supported yet; use lmtp://host:port']);
  const both = analyseConfigText('domains: { local: [example.test] }\nrecipients: { valid: ["@example.test"] }\nmailboxes: { users_file: u.yaml }\n', 'x.yaml', { baseDir: '/tmp' });
  assert.deepEqual(both.issues.map((i) => `${i.severity} ${i.path}: ${i.message}`), ['warning recipients.valid: is not used: mailboxes.users_file says who exists in the local domains']);
});
