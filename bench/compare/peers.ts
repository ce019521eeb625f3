/**
 * The servers bench/compare drives: Postern, a private Postfix instance, Haraka, and Postfix's
 * smtp-sink (stores nothing; the reference). Each starts on its own loopback port in one of two
 * modes — `accept` (durable acceptance only: nothing is delivered) or `relay` (deliver to a sink
 * on 127.0.0.2) — and is stopped and its temp directory removed by bench/lib/cleanup.ts.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onCleanup } from '../lib/cleanup.js';
import { freePort, waitForPort } from '../lib/ports.js';
import { REPO, startPostern, terminate } from '../lib/postern-child.js';
import { cpuSeconds, processTree, treeCpuSeconds, treeMemory, type TreeMemory } from '../lib/proc.js';

const run = promisify(execFile);

export const SINK_HOST = '127.0.0.2';
const HAS_PRLIMIT = existsSync('/usr/bin/prlimit');
/**
 * RLIMIT_NOFILE for the servers and the client: 65536, or the hard limit when that is lower and
 * cannot be raised (a container without CAP_SYS_RESOURCE).
 */
export const NOFILE = ((): number => {
  if (!HAS_PRLIMIT) return 0;
  const hard = Number(spawnSync('/usr/bin/prlimit', ['--pid', String(process.pid), '--nofile', '--raw', '--noheadings', '-o', 'HARD'], { encoding: 'utf8' }).stdout.trim());
  if (hard >= 65_536 || !Number.isFinite(hard)) return 65_536;
  const raised = spawnSync('/usr/bin/prlimit', ['--nofile=65536:65536', '--', 'true']).status === 0;
  return raised ? 65_536 : hard;
})();
/** Run a command with RLIMIT_NOFILE at NOFILE (util-linux prlimit). */
export const PRLIMIT = HAS_PRLIMIT ? ['/usr/bin/prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--'] : [];
const IS_ROOT = process.getuid?.() === 0;

export type Mode = { readonly kind: 'accept' } | { readonly kind: 'relay'; readonly sinkPort: number };

export interface StartOptions {
  readonly parentDir: string;
  /** Connections the server must take at once (listener limits, process limits). */
  readonly connections: number;
}

export interface Running {
  readonly port: number;
  /** The process whose tree is the server (Postfix: master). */
  readonly pid: number;
  cpu(): number | null;
  memory(): TreeMemory;
  stop(): Promise<void>;
}

export interface Peer {
  readonly name: string;
  /** null when it can run here, else why not. */
  readonly missing: string | null;
  readonly version: string;
  /** How it is configured, for the report. */
  readonly setup: string;
  readonly relays: boolean;
  start(mode: Mode, o: StartOptions): Promise<Running>;
}

export function which(cmd: string): string {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
}

/** A child process in its own process group, stopped at clean-up; its output's tail kept. */
function spawnTracked(name: string, command: readonly string[], cwd: string, graceMs: number, dir: string | null): {
  child: ChildProcess; output: () => string; stop: () => Promise<void>;
} {
  const child = spawn(command[0], command.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const keep = (d: Buffer): void => { output = (output + d.toString('utf8')).slice(-8192); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const rm = (): void => { if (dir) rmSync(dir, { recursive: true, force: true }); };
  const stop = onCleanup(`${name} (pid ${child.pid})`, async () => {
    await terminate(child, exited, graceMs, name);
    rm();
  }, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rm();
  });
  return { child, output: () => output, stop };
}

function single(pid: number, stop: () => Promise<void>, port: number): Running {
  return { port, pid, cpu: () => cpuSeconds(pid), memory: () => treeMemory(pid), stop };
}

// ── smtp-sink ────────────────────────────────────────────────────────────────────────────────

const SMTP_SINK = which('smtp-sink');
const POSTFIX = which('postfix') || (existsSync('/usr/sbin/postfix') ? '/usr/sbin/postfix' : '');
const POSTFIX_VERSION = POSTFIX
  ? spawnSync('postconf', ['-d', '-h', 'mail_version'], { encoding: 'utf8' }).stdout.trim() || '?'
  : '';

export interface Sink extends Running {
  /** Messages received so far (smtp-sink -c counters). */
  received(): number;
}

/** smtp-sink on `host`: `-c` prints running counters (msg=N), which we read for relay runs. */
export async function startSmtpSink(host: string, counters: boolean): Promise<Sink> {
  if (!SMTP_SINK) throw new Error('smtp-sink is not installed');
  const port = await freePort(host);
  const args = [
    ...(IS_ROOT ? ['-u', 'nobody'] : []), ...(counters ? ['-c'] : []),
    '-m', '2000', '-h', 'sink.bench.test', `${host}:${port}`, '1000',
  ];
  const t = spawnTracked('smtp-sink', [...PRLIMIT, SMTP_SINK, ...args], REPO, 5000, null);
  let received = 0;
  if (counters) {
    t.child.stdout!.on('data', (d: Buffer) => {
      const all = [...d.toString('latin1').matchAll(/mesg=(\d+)/g)];
      if (all.length > 0) received = Number(all[all.length - 1][1]);
    });
  }
  await waitForPort(host, port, 'smtp-sink');
  return { ...single(t.child.pid!, t.stop, port), received: () => received };
}

export const smtpSinkPeer: Peer = {
  name: 'smtp-sink',
  missing: SMTP_SINK ? null : 'smtp-sink is not installed (Debian: apt-get install postfix)',
  version: POSTFIX_VERSION ? `Postfix ${POSTFIX_VERSION}` : '',
  setup: `\`smtp-sink ${IS_ROOT ? '-u nobody ' : ''}-m 2000 127.0.0.1:PORT 1000\`: answers 250 to everything, stores nothing (the reference)`,
  relays: false,
  start: (mode) => {
    if (mode.kind !== 'accept') throw new Error('smtp-sink does not relay');
    return startSmtpSink('127.0.0.1', false);
  },
};

// ── Postern ──────────────────────────────────────────────────────────────────────────────────

export const posternPeer: Peer = {
  name: 'Postern',
  missing: null,
  version: JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string,
  setup: 'as bench/accept.ts starts it (dist/ when fresh, else tsx): queue (SQLite, fsync before 250) in a temp dir, '
    + '`logging.level: warn`, DNS to 127.0.0.1:9; accept: `delivery.enabled: false`; relay: `domains.relay` '
    + '`example.test` → `smtp://127.0.0.2:PORT` (`tls: none`), delivery defaults (concurrency 20, 10 per destination)',
  relays: true,
  async start(mode, o) {
    const route = mode.kind === 'relay'
      ? [`domains: { local: [bench.test], relay: { example.test: { next_hop: "smtp://${SINK_HOST}:${mode.sinkPort}", tls: none } } }`]
      : ['delivery: { enabled: false }'];
    const s = await startPostern({
      parentDir: o.parentDir,
      config: [
        'hostname: bench.test',
        'store: { path: ./queue, min_free_space: 0 }',
        // Loopback clients get the default RELAYLIST group (policy RELAYED: no per-IP connection limit).
        `listeners: [ { name: inbound, listen: "127.0.0.1:0", max_connections: ${Math.max(1000, o.connections + 100)} } ]`,
        'logging: { level: warn }',
        'dns: { servers: ["127.0.0.1:9"] }',
        ...route,
      ],
      prefix: PRLIMIT,
    });
    // Under prlimit the child is prlimit, which execs node: the same pid.
    return single(s.pid, s.stop, s.port);
  },
};

// ── Postfix: a private instance ──────────────────────────────────────────────────────────────

const MASTER_CF = (port: number): string => `\
# bench/compare: Debian's default services, without chroot (nothing to copy into a jail)
127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

function postfixMissing(): string | null {
  if (!POSTFIX) return 'postfix is not installed (Debian: apt-get install postfix)';
  if (!IS_ROOT) return 'a private Postfix instance needs root (postfix start runs as root, daemons as user postfix)';
  for (const [db, name] of [['passwd', 'postfix'], ['group', 'postdrop']]) {
    if (spawnSync('getent', [db, name]).status !== 0) return `the ${db === 'passwd' ? 'user' : 'group'} ${name} does not exist`;
  }
  return null;
}

export const postfixPeer: Peer = {
  name: 'Postfix',
  missing: postfixMissing(),
  version: POSTFIX_VERSION,
  setup: 'a private instance (`postfix -c DIR start`: own config, queue and data directories in a temp dir, '
    + 'Debian\'s services without chroot, smtpd on 127.0.0.1:PORT, `mynetworks = 127.0.0.0/8`, `mydestination =`, '
    + 'log to `maillog_file`); queue files fsync\'d before 250 as installed; accept: `defer_transports = smtp`; '
    + 'relay: `relayhost = [127.0.0.2]:PORT`, delivery defaults (20 per destination, slow start); '
    + '`default_process_limit` 100 (the default), raised to the connection count for the memory rows',
  relays: true,
  async start(mode, o) {
    const dir = mkdtempSync(join(o.parentDir, 'postfix-bench-'));
    chmodSync(dir, 0o755);
    const etc = join(dir, 'etc');
    const stopPostfix = async (): Promise<void> => {
      await run(POSTFIX, ['-c', etc, 'stop']).catch(() => undefined);
      const pid = masterPid();
      if (pid !== null) for (const p of processTree(pid)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    };
    const masterPid = (): number | null => {
      try {
        const pid = Number(readFileSync(join(dir, 'spool/pid/master.pid'), 'utf8').trim());
        return pid > 0 && existsSync(`/proc/${pid}`) ? pid : null;
      } catch {
        return null;
      }
    };
    const stop = onCleanup(`Postfix in ${dir}`, async () => {
      await stopPostfix();
      rmSync(dir, { recursive: true, force: true });
    }, () => {
      spawnSync(POSTFIX, ['-c', etc, 'stop'], { stdio: 'ignore', timeout: 20_000 });
      rmSync(dir, { recursive: true, force: true });
    });
    try {
      for (const d of ['etc', 'spool', 'data']) mkdirSync(join(dir, d));
      const postfixUid = Number(spawnSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).stdout.trim());
      chownSync(join(dir, 'data'), postfixUid, -1);
      const port = await freePort('127.0.0.1');
      writeFileSync(join(etc, 'master.cf'), MASTER_CF(port));
      writeFileSync(join(etc, 'main.cf'), [
        'compatibility_level = 3.6',
        `queue_directory = ${dir}/spool`,
        `data_directory = ${dir}/data`,
        'mail_owner = postfix',
        'setgid_group = postdrop',
        'myhostname = postfix.bench.test',
        'mydestination =',
        'inet_interfaces = 127.0.0.1',
        'inet_protocols = ipv4',
        'mynetworks = 127.0.0.0/8',
        'alias_maps =',
        'alias_database =',
        `maillog_file_prefixes = ${dir}`,
        `maillog_file = ${dir}/maillog`,
        'smtp_dns_support_level = disabled',
        `default_process_limit = ${Math.max(100, o.connections + 50)}`,
        mode.kind === 'relay' ? `relayhost = [${SINK_HOST}]:${mode.sinkPort}` : 'defer_transports = smtp',
        '',
      ].join('\n'));
      const started = spawnSync(PRLIMIT[0] ?? POSTFIX, [...PRLIMIT.slice(1), ...(PRLIMIT.length ? [POSTFIX] : []), '-c', etc, 'start'], {
        encoding: 'utf8', timeout: 60_000,
      });
      let log = '';
      try { log = readFileSync(join(dir, 'maillog'), 'utf8'); } catch { /* none */ }
      if (started.status !== 0) throw new Error(`postfix -c ${etc} start failed (${started.status}):\n${started.stderr}${log.slice(-2000)}`);
      await waitForPort('127.0.0.1', port, 'Postfix');
      const pid = masterPid();
      if (pid === null) throw new Error('Postfix started but its master.pid is missing');
      return { port, pid, cpu: () => treeCpuSeconds(pid), memory: () => treeMemory(pid), stop };
    } catch (err) {
      await stop();
      throw err;
    }
  },
};

// ── Haraka ───────────────────────────────────────────────────────────────────────────────────

const HARAKA_DIR = join(REPO, 'bench/compare/haraka');
const HARAKA_BIN = join(HARAKA_DIR, 'node_modules/Haraka/bin/haraka');
const HARAKA_VERSION = existsSync(HARAKA_BIN)
  ? (JSON.parse(readFileSync(join(HARAKA_DIR, 'node_modules/Haraka/package.json'), 'utf8')).version as string)
  : '';

export const harakaPeer: Peer = {
  name: 'Haraka',
  missing: existsSync(HARAKA_BIN) ? null : `not installed: run \`npm ci --prefix bench/compare/haraka\` (${HARAKA_BIN} is missing)`,
  version: HARAKA_VERSION,
  setup: 'a config dir made by `haraka -i DIR`, then: `smtp.ini` listen=127.0.0.1:PORT (one process, `nodes` unset), '
    + 'plugins `relay` (`relay_acl_allow` 127.0.0.0/8, so mail is relayed), `log.ini` level=warn, DNS to 127.0.0.1:9 '
    + '(`loopback-dns.cjs`); every message goes to the outbound queue on disk (file fsync\'d, then renamed, before 250); '
    + 'accept: `outbound.ini` disabled=true; relay: `queue/smtp_forward` with an `[example.test]` route to 127.0.0.2:PORT '
    + '(its get_mx hook; the message still goes through the disk queue), outbound defaults',
  relays: true,
  async start(mode, o) {
    const dir = mkdtempSync(join(o.parentDir, 'haraka-bench-'));
    const root = join(dir, 'haraka');
    try {
      const made = spawnSync(process.execPath, [HARAKA_BIN, '-i', root], { cwd: HARAKA_DIR, encoding: 'utf8', timeout: 60_000 });
      if (made.status !== 0) throw new Error(`haraka -i failed (${made.status}): ${made.stderr}`);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const port = await freePort('127.0.0.1');
    const cfg = (name: string, text: string): void => writeFileSync(join(root, 'config', name), text);
    cfg('me', 'haraka.bench.test\n');
    cfg('smtp.ini', `[main]\nlisten=127.0.0.1:${port}\n`);
    cfg('log.ini', '[main]\nlevel=warn\n');
    cfg('relay.ini', '[relay]\nacl=true\n');
    cfg('relay_acl_allow', '127.0.0.0/8\n');
    if (mode.kind === 'relay') {
      cfg('plugins', 'relay\nqueue/smtp_forward\n');
      cfg('smtp_forward.ini', `[main]\nhost=${SINK_HOST}\nport=${mode.sinkPort}\n\n[example.test]\nhost=${SINK_HOST}\nport=${mode.sinkPort}\n`);
    } else {
      cfg('plugins', 'relay\n');
      cfg('outbound.ini', '[main]\ndisabled=true\n');
    }
    const t = spawnTracked('Haraka', [
      ...PRLIMIT, process.execPath, '-r', join(HARAKA_DIR, 'loopback-dns.cjs'), HARAKA_BIN, '-c', root,
    ], HARAKA_DIR, 5000, dir);
    try {
      await waitForPort('127.0.0.1', port, 'Haraka', 60_000);
    } catch (err) {
      await t.stop();
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${t.output()}`);
    }
    return single(t.child.pid!, t.stop, port);
  },
};

export const ALL_PEERS: readonly Peer[] = [posternPeer, postfixPeer, harakaPeer, smtpSinkPeer];
