/**
 * The admin HTTP API against a real gateway: the token guards everything but the dashboard's
 * static files; every queue action the CLI has works through the API and takes effect in the
 * queue; tracking shows the timeline with the next hop's reply; /metrics parses and moves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HARD_REPLY, SOFT_REPLY, startOpsWorld, messageWith, TOKEN } from './ops-world.js';
import { parsePrometheus } from './prometheus-text.js';

const TIMEOUT = 60_000;

test('admin API: no token or a wrong token → 401; the dashboard page itself is served without one', { timeout: TIMEOUT }, async () => {
  const w = await startOpsWorld();
  try {
    for (const path of ['/api/v1/queue', '/api/v1/status', '/api/v1/track?sender=a@src.test', '/metrics']) {
      const none = await w.call('GET', path, undefined, null);
      assert.equal(none.status, 401, `${path} without a token`);
      assert.equal(none.json?.error?.code, 'unauthorized');
      const wrong = await w.call('GET', path, undefined, `${TOKEN}x`);
      assert.equal(wrong.status, 401, `${path} with a wrong token`);
    }
    const post = await w.call('POST', '/api/v1/queue/retry', { all: true }, 'nope-nope-nope-nope');
    assert.equal(post.status, 401);
    const page = await w.call('GET', '/', undefined, null);
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>Postern/);
    const uplot = await w.call('GET', '/vendor/uplot/uPlot.iife.min.js', undefined, null);
    assert.equal(uplot.status, 200);
    assert.equal((await w.call('GET', '/web/../../../package.json', undefined, null)).status, 404);
    assert.equal((await w.call('GET', '/api/v1/nothing')).status, 404);
  } finally {
    await w.stop();
  }
});

test('admin API: no token configured → no API at all', { timeout: TIMEOUT }, async () => {
  const { startTestGateway } = await import('../support/test-gateway.js');
  const gw = await startTestGateway('admin: { listen: "127.0.0.1:0" }');
  try {
    assert.equal(gw.gateway.ops?.admin, null);
  } finally {
    await gw.stop();
  }
});

test('admin API: list, show with timeline, hold, release, retry, bounce, delete; bulk retry', { timeout: TIMEOUT }, async () => {
  const w = await startOpsWorld();
  try {
    const delivered = await w.send(['ok@dst.test'], { data: messageWith('ok.1@src.test', 'ok@dst.test') });
    const soft = await w.send(['soft@dst.test'], { data: messageWith('soft.1@src.test', 'soft@dst.test') });
    const hard = await w.send(['hard@dst.test'], { data: messageWith('hard.1@src.test', 'hard@dst.test') });
    const soft2 = await w.send(['soft2@dst.test']);
    await w.settle();

    const queued = await w.call('GET', '/api/v1/queue?state=queued');
    assert.equal(queued.status, 200);
    assert.deepEqual(queued.json.messages.map((m: { id: string }) => m.id).sort(), [soft, soft2].sort());
    assert.equal(queued.json.messages.find((m: { id: string }) => m.id === soft).summary, 'deferred');
    const done = await w.call('GET', '/api/v1/queue?state=done');
    assert.ok(done.json.messages.some((m: { id: string; summary: string }) => m.id === delivered && m.summary === 'delivered'));
    assert.ok(done.json.messages.some((m: { id: string; summary: string }) => m.id === hard && m.summary === 'bounced'));
    assert.equal((await w.call('GET', '/api/v1/queue?domain=nowhere.test')).json.messages.length, 0);
    assert.equal((await w.call('GET', '/api/v1/queue?state=bogus')).status, 400);

    // show: the whole timeline, with the next hop and its full reply.
    const shown = await w.call('GET', `/api/v1/queue/${hard}`);
    assert.equal(shown.status, 200);
    const kinds = shown.json.message.timeline.map((e: { kind: string }) => e.kind);
    assert.deepEqual(kinds.slice(0, 3), ['connection', 'rcpt', 'accepted']);
    const attempt = shown.json.message.timeline.find((e: { kind: string }) => e.kind === 'attempt');
    assert.equal(attempt.reply, HARD_REPLY);
    assert.match(attempt.nextHop, /127\.0\.0\.2/);
    assert.ok(kinds.includes('bounced') && kinds.includes('dsn'), kinds.join());
    assert.equal(shown.json.message.messageId, '<hard.1@src.test>');
    assert.equal((await w.call('GET', '/api/v1/queue/NOSUCHMESSAGE00')).status, 404);

    // hold → retry refused → release → retry: another attempt is made at once.
    assert.equal((await w.call('POST', `/api/v1/queue/${soft}/hold`)).json.result, 'changed');
    assert.equal(w.message(soft).state, 'held');
    const refused = await w.call('POST', `/api/v1/queue/${soft}/retry`);
    assert.deepEqual([refused.status, refused.json.result], [409, 'wrong-state']);
    assert.equal((await w.call('POST', `/api/v1/queue/${soft}/release`)).json.result, 'changed');
    await w.settle();
    const attemptsAfterRelease = w.message(soft).recipients[0].attempts;
    assert.equal(attemptsAfterRelease, 2, 'release makes the message due at once');
    assert.equal((await w.call('POST', `/api/v1/queue/${soft}/retry`)).json.result, 'changed');
    await w.settle();
    assert.equal(w.message(soft).recipients[0].attempts, 3);
    assert.equal(w.message(soft).recipients[0].lastReply, SOFT_REPLY);

    // Bulk retry of everything queued.
    const bulk = await w.call('POST', '/api/v1/queue/retry', { all: true });
    assert.deepEqual([bulk.status, bulk.json.total, bulk.json.changed], [200, 2, 2]);
    await w.settle();
    assert.equal(w.message(soft2).recipients[0].attempts, 2);
    assert.equal((await w.call('POST', '/api/v1/queue/retry', {})).status, 400);

    // bounce: hard bounce with a DSN to the sender, through the outcome recorder.
    const bounced = await w.call('POST', `/api/v1/queue/${soft}/bounce`);
    assert.deepEqual([bounced.status, bounced.json.result], [200, 'changed']);
    const after = w.message(soft);
    assert.deepEqual([after.state, after.recipients[0].state], ['done', 'bounced']);
    const timeline = (await w.call('GET', `/api/v1/queue/${soft}`)).json.message.timeline as { kind: string; reply: string | null }[];
    assert.ok(timeline.some((e) => e.kind === 'bounced' && /administrator/.test(e.reply ?? '')));
    const dsn = timeline.find((e) => e.kind === 'dsn') as { detail: { dsnId: string } } | undefined;
    assert.ok(dsn, 'a DSN was queued with the bounce');
    const notice = w.message(dsn.detail.dsnId);
    assert.deepEqual([notice.envelope.sender, notice.recipients[0].address, notice.origin], ['', 'a@src.test', 'dsn']);

    // delete: gone without a DSN; a second delete is refused.
    const del = await w.call('DELETE', `/api/v1/queue/${soft2}`);
    assert.deepEqual([del.status, del.json.result], [200, 'changed']);
    assert.deepEqual([w.message(soft2).state, w.message(soft2).recipients[0].state], ['done', 'deleted']);
    assert.equal((await w.call('POST', `/api/v1/queue/${soft2}/delete`)).status, 409);
    assert.equal((await w.call('POST', `/api/v1/queue/${soft2}/explode`)).status, 404);

    // status
    const status = await w.call('GET', '/api/v1/status');
    assert.equal(status.status, 200);
    assert.equal(status.json.queue.queued, w.gw.gateway.store.counts().queued);
    assert.equal(typeof status.json.rates.accepted, 'number');
    assert.ok(status.json.bounces24h.hard >= 2, JSON.stringify(status.json));
    assert.ok(status.json.bounces24h.soft >= 1);
  } finally {
    await w.stop();
  }
});

test('admin API: track by sender, recipient, message-id; bounce report ranks destinations with their replies', { timeout: TIMEOUT }, async () => {
  const w = await startOpsWorld();
  try {
    const hard = await w.send(['hard@dst.test'], { data: messageWith('find.me@src.test', 'hard@dst.test') });
    await w.send(['soft@dst.test']);
    await w.settle();
    const byId = await w.call('GET', '/api/v1/track?message_id=find.me@src.test');
    assert.deepEqual(byId.json.messages.map((m: { id: string }) => m.id), [hard]);
    const byRcpt = await w.call('GET', '/api/v1/track?recipient=HARD@dst.test');
    assert.deepEqual(byRcpt.json.messages.map((m: { id: string }) => m.id), [hard]);
    assert.equal((await w.call('GET', '/api/v1/track?sender=a@src.test')).json.messages.length, 2);
    assert.equal((await w.call('GET', '/api/v1/track?outcome=bounced')).json.messages[0].id, hard);
    assert.equal((await w.call('GET', '/api/v1/track?next_hop=127.0.0.2')).json.messages.length, 2);
    const report = await w.call('GET', '/api/v1/track/bounces?window=3650d');
    const [dst] = report.json.destinations;
    assert.deepEqual([dst.domain, dst.soft, dst.hard], ['dst.test', 1, 1]);
    assert.ok(dst.replies.some((r: { reply: string; outcome: string }) => r.reply === HARD_REPLY && r.outcome === 'hard'));
    assert.ok(dst.replies.some((r: { reply: string; outcome: string }) => r.reply === SOFT_REPLY && r.outcome === 'soft'));
  } finally {
    await w.stop();
  }
});

test('/metrics: Prometheus text that parses; its counters move as mail flows; public when configured', { timeout: TIMEOUT }, async () => {
  const w = await startOpsWorld('');
  try {
    const read = async (): Promise<Map<string, number>> => {
      const r = await w.call('GET', '/metrics');
      assert.equal(r.status, 200);
      return parsePrometheus(r.text);
    };
    const before = await read();
    assert.equal(before.get('postern_messages_total{outcome="accepted"}'), 0);
    await w.send(['ok@dst.test']);
    await w.send(['soft@dst.test']);
    // NOTIFY=NEVER: no DSN, whose delivery would count as one more delivered.
    await w.send(['hard@dst.test'], { rcptParams: ['NOTIFY=NEVER'] });
    await w.settle();
    const after = await read();
    assert.equal(after.get('postern_messages_total{outcome="accepted"}'), 3);
    assert.equal(after.get('postern_messages_total{outcome="delivered"}'), 1);
    assert.equal(after.get('postern_messages_total{outcome="soft"}'), 1);
    assert.equal(after.get('postern_messages_total{outcome="hard"}'), 1);
    assert.equal(after.get('postern_connections_total{listener="inbound"}'), 3);
    assert.equal(after.get('postern_smtp_replies_total{direction="sent",stage="RCPT",code="250",class="2xx"}'), 3);
    assert.equal(after.get('postern_smtp_replies_total{direction="received",stage="DELIVERY",code="550",class="hard"}'), 1);
    assert.equal(after.get('postern_smtp_replies_total{direction="received",stage="DELIVERY",code="450",class="soft"}'), 1);
    assert.equal(after.get('postern_queue_depth{state="queued"}'), 1);
    assert.equal(after.get('postern_delivery_latency_seconds_count'), 1);
    assert.ok((after.get('postern_dns_lookups_total{type="MX"}') ?? 0) >= 1);
    // Group commit: every received message made durable, by at most one fsync each.
    assert.equal(after.get('postern_store_committed_messages_total'), 3);
    const fsyncs = after.get('postern_store_commit_fsyncs_total') ?? 0;
    assert.ok(fsyncs >= 1 && fsyncs <= 3, `${fsyncs} fsyncs for 3 messages`);
  } finally {
    await w.stop();
  }
  const { startTestGateway } = await import('../support/test-gateway.js');
  const gw = await startTestGateway(`admin: { listen: "127.0.0.1:0", token: "${TOKEN}", metrics_public: true }`);
  try {
    const port = gw.gateway.ops?.admin?.port;
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    assert.ok(parsePrometheus(await res.text()).has('postern_queue_depth{state="queued"}'));
    const api = await fetch(`http://127.0.0.1:${port}/api/v1/status`, { signal: AbortSignal.timeout(5000) });
    assert.equal(api.status, 401, 'the API still needs the token');
  } finally {
    await gw.stop();
  }
});
