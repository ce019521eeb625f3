/**
 * Slot exhaustion: 1,000 concurrent idle connections — greeted and silent, after EHLO, halfway
 * through a command line, inside DATA — do not stop a normal client from delivering a message;
 * and 1,000 from one address against a per-IP limit are turned away (421 4.7.0) while the normal
 * client still gets in under the listener's default connection cap.
 *
 * Client and server share this process, so each connection costs two file descriptors; when the
 * process's limit (`ulimit -n`) is too low for 1,000, the test uses as many as fit and says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { SmtpTestClient } from '../support/smtp-test-client.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';

const WANTED = 1000;

function fdLimit(): number {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(out);
  } catch {
    return 1024;
  }
}

const IDLE = Math.max(10, Math.min(WANTED, Math.floor((fdLimit() - 300) / 2)));
if (IDLE < WANTED) console.log(`# the fd limit (ulimit -n = ${fdLimit()}) fits only ${IDLE} idle connections, not ${WANTED}`);

interface Idle {
  readonly socket: Socket;
  /** What the server sent it. */
  text: string;
}

/** Opens one connection from `from` and waits for its first reply line (greeting or 421). */
function openIdle(port: number, from: string): Promise<Idle> {
  return new Promise((resolve, reject) => {
    const idle: Idle = { socket: connect({ port, host: '127.0.0.1', localAddress: from }), text: '' };
    const timer = setTimeout(() => reject(new Error(`no greeting for a connection from ${from}`)), 20_000);
    idle.socket.on('error', () => undefined);
    idle.socket.on('data', (d: Buffer) => {
      const first = idle.text === '';
      idle.text += d.toString('latin1');
      if (first) {
        clearTimeout(timer);
        resolve(idle);
      }
    });
    idle.socket.once('close', () => {
      clearTimeout(timer);
      resolve(idle);
    });
  });
}

/** `count` connections, in batches (the listen backlog is finite), spread over `addresses`. */
async function openMany(port: number, count: number, addresses: readonly string[]): Promise<Idle[]> {
  const all: Idle[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({ length: Math.min(100, count - i) }, (_, k) => openIdle(port, addresses[(i + k) % addresses.length]));
    all.push(...await Promise.all(batch));
  }
  return all;
}

/** A normal client from 127.0.0.1: one whole message; returns the time it took. */
async function deliverOne(gw: TestGateway): Promise<number> {
  const t0 = Date.now();
  const c = await SmtpTestClient.connect(gw.port);
  try {
    assert.equal(await c.code(5000), '220');
    assert.equal(await c.cmd('EHLO normal.test', 5000), '250');
    assert.equal(await c.cmd('MAIL FROM:<someone@normal.test>', 5000), '250 2.1.0');
    assert.equal(await c.cmd('RCPT TO:<alice@example.test>', 5000), '250 2.1.5');
    assert.equal(await c.cmd('DATA', 5000), '354');
    c.write('Subject: through the crowd\r\n\r\nhello\r\n.\r\n');
    const r = await c.reply(5000);
    assert.equal(r.code, 250, r.raw);
    const id = /queued as (\S+)/.exec(r.lines[0])![1];
    assert.ok(gw.gateway.store.getMessage(id));
  } finally {
    c.close();
  }
  return Date.now() - t0;
}

const COMMON = [
  'domains: { local: [example.test] }',
  'recipients: { valid: [alice@example.test] }',
  'sender_auth: { check: false }',
];

test(`${IDLE} concurrent idle connections (silent, after EHLO, mid-command, in DATA) do not stop a normal client`, { timeout: 90_000 }, async () => {
  const gw = await startTestGateway([
    ...COMMON,
    'sender_groups: [{ name: ALL, match: [all], policy: ACCEPTED }]',
    `listeners: [{ name: inbound, listen: "127.0.0.1:0", max_connections: ${IDLE + 50} }]`,
  ].join('\n'));
  let idle: Idle[] = [];
  try {
    const addresses = Array.from({ length: 100 }, (_, i) => `127.0.0.${100 + i}`);
    idle = await openMany(gw.port, IDLE, addresses);
    assert.ok(idle.every((c) => c.text.startsWith('220 ')), 'every idle connection was greeted');
    // Make them idle in different states.
    idle.forEach((c, i) => {
      switch (i % 4) {
        case 0: break; // greeted, silent
        case 1: c.socket.write('EHLO idle.test\r\n'); break;
        case 2: c.socket.write('EHLO idle.test\r\nMAIL FROM:<slow@idle'); break; // a command never finished
        case 3: c.socket.write('EHLO idle.test\r\nMAIL FROM:<a@idle.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: drip\r\n'); break;
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(idle.filter((c) => c.socket.destroyed).length, 0, 'the idle connections are all still open');
    const took = await deliverOne(gw);
    console.log(`# a normal client delivered in ${took} ms with ${IDLE} idle connections open`);
    assert.ok(took < 5000, `took ${took} ms`);
  } finally {
    for (const c of idle) c.socket.destroy();
    await gw.stop();
  }
});

test(`${IDLE} connections from one address against a per-IP limit: the rest get 421 4.7.0; a normal client still gets in`, { timeout: 90_000 }, async () => {
  const gw = await startTestGateway([
    ...COMMON,
    'sender_groups: [{ name: ALL, match: [all], policy: ACCEPTED }]',
    'policies: { ACCEPTED: { max_connections_per_ip: 20 } }',
    'listeners: [{ name: inbound, listen: "127.0.0.1:0" }]', // the default cap: 1,000 connections
  ].join('\n'));
  let idle: Idle[] = [];
  try {
    idle = await openMany(gw.port, IDLE, ['127.0.0.66']);
    const greeted = idle.filter((c) => c.text.startsWith('220 ')).length;
    const refused = idle.filter((c) => c.text.startsWith('421 4.7.0')).length;
    assert.equal(greeted, 20, 'the per-IP limit');
    assert.equal(refused, IDLE - 20, 'the rest are told to come back later');
    const took = await deliverOne(gw);
    assert.ok(took < 5000, `took ${took} ms`);
  } finally {
    for (const c of idle) c.socket.destroy();
    await gw.stop();
  }
});
