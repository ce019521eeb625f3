// Postern dashboard: plain JavaScript, no build step. One page with hash routes:
//   #/overview   rates, queue depth and replies by class over time
//   #/queue      the queue browser with its actions (retry, hold, release, bounce, delete)
//   #/message/ID a message's envelope, recipients and timeline from connect to final outcome
//   #/bounces    destinations ranked by soft and hard bounces, with the replies they gave
//   #/track?...  search results (recipient, sender, Message-ID, queue id)
// Every API call carries the admin token (kept in sessionStorage) as a bearer header. Data is
// only ever put into the page as text (el()), never as HTML.
'use strict';

const TOKEN_KEY = 'postern.admin.token';
const $ = (sel) => document.querySelector(sel);

/** Creates an element; children are nodes or strings (inserted as text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'className') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

class Unauthorized extends Error {}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new Unauthorized('no token');
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401) throw new Unauthorized('the token was not accepted');
  const json = await res.json().catch(() => ({}));
  if (!res.ok && res.status !== 409 && res.status !== 404) throw new Error(json.error?.message || `${res.status} ${res.statusText}`);
  return { status: res.status, json };
}

// ── formatting ────────────────────────────────────────────────────────────────────────────────

const pad = (n, w = 2) => String(n).padStart(w, '0');
function fmtTime(ms) {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}
function fmtAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}
const badge = (state) => el('span', { className: `badge ${String(state).replace(/^partly /, '')}` }, state);

function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 3500);
}

const RESULT_TEXT = {
  changed: 'done',
  'not-found': 'no such message',
  busy: 'being delivered right now — try again',
  'wrong-state': 'not possible in its current state',
};

const ACTION_CONFIRM = {
  bounce: 'Bounce this message now? The sender gets a failure notice (DSN).',
  delete: 'Delete this message? It is removed without telling the sender.',
};

/** Runs an action on messages; returns after the API answered. */
async function act(action, ids) {
  if (ACTION_CONFIRM[action] && !window.confirm(ids.length > 1 ? `${ACTION_CONFIRM[action]} (${ids.length} messages)` : ACTION_CONFIRM[action])) return false;
  if (ids.length === 1) {
    const r = await api('POST', `/api/v1/queue/${encodeURIComponent(ids[0])}/${action}`);
    toast(`${action} ${ids[0]}: ${RESULT_TEXT[r.json.result] || r.json.result}`);
  } else {
    const r = await api('POST', `/api/v1/queue/${action}`, { ids });
    toast(`${action}: ${r.json.changed} of ${r.json.total} done`);
  }
  return true;
}

/** Action buttons that fit a message's state. */
function actionsFor(m) {
  if (m.state === 'done') return [];
  if (m.state === 'held') return ['release', 'delete'];
  return ['retry', 'hold', 'bounce', 'delete'];
}

function actionButton(action, ids, after) {
  const label = action[0].toUpperCase() + action.slice(1);
  return el('button', {
    type: 'button',
    className: action === 'bounce' || action === 'delete' ? 'danger' : '',
    dataset: { action },
    onclick: async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      try {
        if (await act(action, ids)) await after();
      } catch (err) {
        handleError(err);
      } finally {
        button.disabled = false;
      }
    },
  }, label);
}

// ── pages ─────────────────────────────────────────────────────────────────────────────────────

let charts = [];
let refreshTimer = null;

function clearPage() {
  for (const c of charts) c.destroy();
  charts = [];
  clearInterval(refreshTimer);
  refreshTimer = null;
  const page = $('#page');
  page.replaceChildren();
  return page;
}

function chart(container, title, series, data, opts = {}) {
  const width = Math.max(320, container.clientWidth - 4);
  const plot = new uPlot({
    width,
    height: 220,
    title,
    legend: { show: true },
    scales: { x: { time: true } },
    axes: [{}, { size: 50 }],
    series: [{}, ...series],
    ...opts,
  }, data, container);
  charts.push(plot);
  return plot;
}

const WINDOWS = { '1h': [3600000, 60000], '6h': [21600000, 300000], '24h': [86400000, 900000] };

async function overviewPage(params) {
  const page = clearPage();
  const win = WINDOWS[params.get('window')] ? params.get('window') : '1h';
  const [windowMs, bucketMs] = WINDOWS[win];
  const [status, overview] = await Promise.all([
    api('GET', '/api/v1/status'),
    api('GET', `/api/v1/status/overview?window=${windowMs}ms&bucket=${bucketMs}ms`),
  ]);
  const s = status.json;
  const o = overview.json;
  const perMin = 60000 / o.bucketMs;
  const kpi = (label, value, cls = '') => el('div', { className: `kpi ${cls}` }, el('div', { className: 'v' }, value), el('div', { className: 'l' }, label));
  page.append(
    el('div', { className: 'page-head' },
      el('h1', {}, 'Overview'),
      el('span', { className: 'muted' }, `as of ${fmtTime(s.now)} UTC`),
      el('span', { className: 'spacer' }),
      ...Object.keys(WINDOWS).map((w) => el('a', { href: `#/overview?window=${w}`, className: w === win ? 'badge' : '' }, `last ${w}`))),
    el('div', { className: 'kpis', id: 'kpis' },
      kpi('connections open', s.connections ?? '–'),
      kpi('accepted / min', s.rates.accepted),
      kpi('delivered / min', s.rates.delivered),
      kpi('queued', s.queue.queued),
      kpi('deferred (soft)', s.queue.deferred, s.queue.deferred ? 'soft' : ''),
      kpi('held', s.queue.held),
      kpi('soft bounces 24 h', s.bounces24h.soft, 'soft'),
      kpi('hard bounces 24 h', s.bounces24h.hard, 'hard')),
  );
  const c1 = el('div', { className: 'chart' });
  const c2 = el('div', { className: 'chart' });
  const c3 = el('div', { className: 'chart' });
  page.append(
    el('div', { className: 'row' },
      el('div', { className: 'card' }, c1),
      el('div', { className: 'card' }, c2)),
    el('div', { className: 'card' }, c3,
      el('p', { className: 'muted' }, 'Soft = 4xx (try again later), hard = 5xx (permanent). "Sent" are the replies Postern gave clients (greeting, RCPT); "received" are the replies next hops gave Postern.')));
  const x = o.start.map((t) => t / 1000);
  const rate = (a) => a.map((n) => n * perMin);
  chart(c1, `Per minute (buckets of ${Math.round(o.bucketMs / 60000)} min)`, [
    { label: 'connections', stroke: '#7a8599', width: 1.5, dash: [5, 4] },
    { label: 'accepted', stroke: '#2f5fd0', width: 2 },
    { label: 'delivered', stroke: '#1a7f4b', width: 2 },
  ], [x, rate(o.connections), rate(o.accepted), rate(o.delivered)]);
  const depth = o.queueDepth.length > 0 ? o.queueDepth : [{ at: s.now, queued: s.queue.queued, held: s.queue.held }];
  chart(c2, 'Queue depth', [
    { label: 'queued', stroke: '#b26a00', fill: 'rgba(240,180,90,.15)', width: 2 },
    { label: 'held', stroke: '#6b4fbb', width: 1.5 },
  ], [depth.map((d) => d.at / 1000), depth.map((d) => d.queued), depth.map((d) => d.held)],
  depth.length === 1 ? { series: [{}, { label: 'queued', stroke: '#b26a00', points: { size: 8 } }, { label: 'held', stroke: '#6b4fbb', points: { size: 8 } }] } : {});
  const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
  chart(c3, 'Replies by class: soft (4xx) and hard (5xx)', [
    { label: 'sent soft', stroke: '#f0b45a', fill: 'rgba(240,180,90,.5)', paths: bars },
    { label: 'sent hard', stroke: '#e0675f', fill: 'rgba(224,103,95,.5)', paths: bars },
    { label: 'received soft', stroke: '#b26a00', width: 2 },
    { label: 'received hard', stroke: '#c0322b', width: 2 },
  ], [x, o.sentSoft, o.sentHard, o.receivedSoft, o.receivedHard]);
  refreshTimer = setInterval(() => { if (location.hash.startsWith('#/overview')) route(); }, 30000);
}

async function queuePage(params) {
  const page = clearPage();
  const state = params.get('state') ?? 'queued';
  const domain = params.get('domain') ?? '';
  const older = params.get('older_than') ?? '';
  const q = new URLSearchParams({ limit: '500' });
  if (state) q.set('state', state);
  if (domain) q.set('domain', domain);
  if (older) q.set('older_than', older);
  const { json } = await api('GET', `/api/v1/queue?${q}`);
  const messages = json.messages.slice().reverse(); // newest first
  const selected = new Set();
  const reload = () => queuePage(new URLSearchParams(location.hash.split('?')[1] || ''));

  const stateSel = el('select', { id: 'f-state' },
    ...[['queued', 'queued'], ['held', 'held'], ['done', 'finished'], ['', 'all']].map(([v, l]) => el('option', { value: v, selected: v === state }, l)));
  const domainIn = el('input', { id: 'f-domain', placeholder: 'recipient domain', value: domain, size: 18 });
  const olderIn = el('input', { id: 'f-older', placeholder: 'e.g. 1h', value: older, size: 6 });
  const apply = () => {
    const p = new URLSearchParams();
    p.set('state', stateSel.value);
    if (domainIn.value.trim()) p.set('domain', domainIn.value.trim());
    if (olderIn.value.trim()) p.set('older_than', olderIn.value.trim());
    location.hash = `#/queue?${p}`;
  };
  const bulkButtons = ['retry', 'hold', 'release', 'bounce', 'delete'].map((a) => {
    const b = el('button', { type: 'button', className: a === 'bounce' || a === 'delete' ? 'danger' : '', disabled: true, dataset: { bulk: a },
      onclick: async () => {
        try {
          if (await act(a, [...selected])) await reload();
        } catch (err) { handleError(err); }
      } }, `${a[0].toUpperCase()}${a.slice(1)} selected`);
    return b;
  });
  const syncBulk = () => bulkButtons.forEach((b) => { b.disabled = selected.size === 0; });

  page.append(
    el('div', { className: 'page-head' }, el('h1', {}, 'Queue'), el('span', { className: 'muted' }, `${messages.length} message(s)`)),
    el('div', { className: 'card' },
      el('form', { className: 'filters', onsubmit: (e) => { e.preventDefault(); apply(); } },
        el('label', {}, 'State', stateSel),
        el('label', {}, 'Domain', domainIn),
        el('label', {}, 'Older than', olderIn),
        el('button', { type: 'submit' }, 'Apply'),
        el('div', { className: 'bulk' }, ...bulkButtons)),
      messages.length === 0
        ? el('div', { className: 'empty' }, state === 'queued' ? 'Nothing waiting: every message has been delivered or bounced.' : 'No messages match.')
        : el('table', { id: 'queue-table' },
          el('thead', {}, el('tr', {},
            el('th', {}, el('input', { type: 'checkbox', 'aria-label': 'select all', onchange: (e) => {
              for (const box of page.querySelectorAll('tbody input[type=checkbox]')) {
                box.checked = e.target.checked;
                if (box.checked) selected.add(box.value); else selected.delete(box.value);
              }
              syncBulk();
            } })),
            el('th', {}, 'Queue ID'), el('th', {}, 'State'), el('th', { className: 'num' }, 'Age'),
            el('th', {}, 'From → To'), el('th', {}, 'Last reply'), el('th', { className: 'num' }, 'Size'), el('th', {}, 'Actions'))),
          el('tbody', {}, ...messages.map((m) => {
            const lastReply = m.recipients.map((r) => r.lastReply).filter(Boolean).pop() || '';
            return el('tr', { dataset: { id: m.id } },
              el('td', {}, el('input', { type: 'checkbox', value: m.id, 'aria-label': `select ${m.id}`, onchange: (e) => {
                if (e.target.checked) selected.add(m.id); else selected.delete(m.id);
                syncBulk();
              } })),
              el('td', {}, el('a', { className: 'mono', href: `#/message/${encodeURIComponent(m.id)}` }, m.id)),
              el('td', { className: 'state' }, badge(m.summary)),
              el('td', { className: 'num', title: fmtTime(m.receivedAt) }, fmtAge((json.now ?? Date.now()) - m.receivedAt)),
              el('td', {}, el('div', {}, m.sender === '' ? '<>' : m.sender), el('div', { className: 'muted' }, '→ ', m.recipients.map((r) => r.address).join(', '))),
              el('td', { className: 'reply' }, lastReply),
              el('td', { className: 'num' }, fmtSize(m.size)),
              el('td', { className: 'actions' }, ...actionsFor(m).map((a) => actionButton(a, [m.id], reload))));
          })))),
  );
}

function describeEvent(e) {
  const d = e.detail || {};
  switch (e.kind) {
    case 'connection':
      return [`Connection from ${d.client}${d.rdns ? ` (${d.rdns})` : ''} on ${d.listener}: sender group ${d.senderGroup ?? '–'}, policy ${d.policy ?? '–'}`, e.reply];
    case 'rcpt':
      return [`RCPT TO ${e.recipient} (from <${e.sender}>)`, e.reply];
    case 'accepted':
      return [`Accepted as ${e.queueId}: ${fmtSize(d.size)} from <${e.sender}> for ${(d.recipients || []).join(', ')}${d.messageId ? `, Message-ID ${d.messageId}` : ''}`, null];
    case 'attempt':
      return [`Delivery attempt to ${e.recipient}`, e.reply, e.nextHop];
    case 'deferred':
      return [`Deferred (soft bounce) for ${e.recipient}${d.nextAttemptAt ? `; next retry ${fmtTime(d.nextAttemptAt)} UTC` : ''}`, e.reply, e.nextHop];
    case 'delivered':
      return [`Delivered to ${e.recipient}`, e.reply, e.nextHop];
    case 'bounced':
      return [`Bounced (hard) for ${e.recipient}`, e.reply, e.nextHop];
    case 'expired':
      return [`Expired: soft bounces turned hard for ${e.recipient}`, e.reply];
    case 'dsn':
      return [`Delivery status notification to <${e.recipient}> queued as ${d.dsnId}`, null];
    case 'held': return ['Held by the administrator', null];
    case 'released': return ['Released by the administrator', null];
    case 'retry': return ['Retry requested by the administrator', null];
    case 'deleted': return [`Deleted by the administrator${d.recipients?.length ? ` (${d.recipients.join(', ')})` : ''}`, null];
    default: return [e.kind, e.reply];
  }
}

/** The timeline's badge: what happened, coloured by how it went. */
const KIND_LABEL = {
  connection: 'connect', rcpt: 'RCPT', accepted: 'queued', attempt: 'attempt', deferred: 'deferred', delivered: 'delivered',
  bounced: 'bounced', expired: 'expired', dsn: 'DSN', held: 'held', released: 'released', retry: 'retry', deleted: 'deleted',
};
const OUTCOME_CLASS = { accepted: 'accepted', generated: 'accepted', rejected: 'hard', soft: 'soft', hard: 'hard', 'retry-now': 'soft', delivered: 'delivered', expired: 'hard' };

function timeline(events) {
  return el('ol', { className: 'timeline', id: 'timeline' }, ...events.map((e) => {
    const [what, reply, hop] = describeEvent(e);
    return el('li', { dataset: { kind: e.kind } },
      el('span', { className: 't' }, fmtTime(e.at)),
      el('span', {}, el('span', { className: `badge ${OUTCOME_CLASS[e.outcome] || e.kind}`, title: e.outcome || '' }, KIND_LABEL[e.kind] || e.kind)),
      el('div', { className: 'what' },
        el('div', {}, what),
        hop ? el('div', { className: 'hop' }, `next hop ${hop}`) : null,
        reply ? el('code', { className: 'reply' }, reply) : null));
  }));
}

async function messagePage(id) {
  const page = clearPage();
  const { status, json } = await api('GET', `/api/v1/queue/${encodeURIComponent(id)}`);
  if (status === 404) {
    page.append(el('div', { className: 'card empty' }, `No message ${id}. It may have been pruned after the retention period.`));
    return;
  }
  const m = json.message;
  const reload = () => messagePage(id);
  page.append(
    el('div', { className: 'page-head' },
      el('h1', {}, 'Message ', el('span', { className: 'mono' }, m.id)),
      el('span', { id: 'message-state' }, badge(m.summary)),
      el('span', { className: 'spacer' }),
      el('span', { className: 'actions' }, ...actionsFor(m).map((a) => actionButton(a, [m.id], reload)))),
    el('div', { className: 'row' },
      el('div', { className: 'card' },
        el('h2', {}, 'Envelope'),
        el('dl', { className: 'facts' },
          el('dt', {}, 'From'), el('dd', {}, m.sender === '' ? '<> (null sender)' : m.sender),
          el('dt', {}, 'Received'), el('dd', {}, `${fmtTime(m.receivedAt)} UTC`),
          el('dt', {}, 'Client'), el('dd', {}, `${m.client.ip}${m.client.helo ? ` (HELO ${m.client.helo})` : ''}`),
          el('dt', {}, 'Sender group'), el('dd', {}, `${m.client.senderGroup ?? '–'} / policy ${m.client.policy ?? '–'}`),
          el('dt', {}, 'Size'), el('dd', {}, fmtSize(m.size)),
          el('dt', {}, 'Message-ID'), el('dd', { className: 'mono' }, m.messageId ?? '–'),
          el('dt', {}, 'Origin'), el('dd', {}, m.origin === 'received' ? 'received over SMTP' : `generated by Postern (${m.origin})`),
          ...(m.nextAttemptAt ? [el('dt', {}, 'Next attempt'), el('dd', {}, `${fmtTime(m.nextAttemptAt)} UTC`)] : []))),
      el('div', { className: 'card' },
        el('h2', {}, 'Recipients'),
        el('table', { id: 'recipients' },
          el('thead', {}, el('tr', {}, el('th', {}, 'Address'), el('th', {}, 'State'), el('th', { className: 'num' }, 'Attempts'), el('th', {}, 'Last reply'))),
          el('tbody', {}, ...m.recipients.map((r) => el('tr', {},
            el('td', {}, r.address),
            el('td', {}, badge(r.display)),
            el('td', { className: 'num' }, r.attempts),
            el('td', { className: 'reply' }, r.lastReply ?? ''))))))),
    el('div', { className: 'card' }, el('h2', {}, 'Timeline'), timeline(m.timeline)),
  );
}

async function bouncesPage(params) {
  const page = clearPage();
  const win = params.get('window') || '24h';
  const { json } = await api('GET', `/api/v1/track/bounces?window=${encodeURIComponent(win)}`);
  const max = Math.max(1, ...json.destinations.map((d) => d.soft + d.hard));
  page.append(
    el('div', { className: 'page-head' },
      el('h1', {}, 'Bounce report'),
      el('span', { className: 'muted' }, `destinations ranked by bounces since ${fmtTime(json.since)} UTC`),
      el('span', { className: 'spacer' }),
      ...['1h', '24h', '7d', '30d'].map((w) => el('a', { href: `#/bounces?window=${w}`, className: w === win ? 'badge' : '' }, `last ${w}`))),
    el('div', { className: 'card' },
      json.destinations.length === 0
        ? el('div', { className: 'empty' }, 'No bounces in this period.')
        : el('table', { id: 'bounce-table' },
          el('thead', {}, el('tr', {}, el('th', {}, 'Destination'), el('th', { className: 'num' }, 'Soft'), el('th', { className: 'num' }, 'Hard'), el('th', {}, ''), el('th', {}, 'Replies they gave'))),
          el('tbody', {}, ...json.destinations.map((d) => el('tr', { dataset: { domain: d.domain } },
            el('td', {}, el('a', { href: `#/track?recipient_domain=${encodeURIComponent(d.domain)}` }, d.domain)),
            el('td', { className: 'num' }, d.soft),
            el('td', { className: 'num' }, d.hard),
            el('td', {}, el('div', { className: 'bar', title: `${d.soft} soft, ${d.hard} hard` },
              el('div', { className: 's', style: `width:${(100 * d.soft) / max}%` }),
              el('div', { className: 'h', style: `width:${(100 * d.hard) / max}%` }))),
            el('td', {}, el('ul', { className: 'replies' }, ...d.replies.map((r) => el('li', {},
              badge(r.outcome), ' ', el('span', { className: 'muted' }, `${r.count}×`), ' ', el('code', { className: 'reply' }, r.reply)))))))))),
  );
}

async function trackPage(params) {
  const page = clearPage();
  if (params.has('recipient_domain')) {
    location.hash = `#/queue?state=&domain=${encodeURIComponent(params.get('recipient_domain'))}`;
    return;
  }
  const q = new URLSearchParams();
  for (const k of ['recipient', 'sender', 'message_id', 'queue_id']) if (params.get(k)) q.set(k, params.get(k));
  const { json } = await api('GET', `/api/v1/track?${q}`);
  page.append(
    el('div', { className: 'page-head' }, el('h1', {}, 'Search'), el('span', { className: 'muted' }, [...q].map(([k, v]) => `${k.replace('_', ' ')} ${v}`).join(', '))),
    el('div', { className: 'card' },
      json.messages.length === 0 && json.refusals.length === 0 ? el('div', { className: 'empty' }, 'No message found.') : null,
      json.messages.length > 0
        ? el('table', { id: 'track-table' },
          el('thead', {}, el('tr', {}, el('th', {}, 'Queue ID'), el('th', {}, 'State'), el('th', {}, 'Received'), el('th', {}, 'From → To'), el('th', {}, 'Last reply'))),
          el('tbody', {}, ...json.messages.map((m) => el('tr', {},
            el('td', {}, el('a', { className: 'mono', href: `#/message/${encodeURIComponent(m.id)}` }, m.id)),
            el('td', {}, badge(m.summary)),
            el('td', {}, fmtTime(m.receivedAt)),
            el('td', {}, `${m.sender || '<>'} → ${m.recipients.map((r) => r.address).join(', ')}`),
            el('td', { className: 'reply' }, m.recipients.map((r) => r.lastReply).filter(Boolean).pop() || '')))))
        : null),
    json.refusals.length > 0
      ? el('div', { className: 'card' }, el('h2', {}, 'Refused before queueing'), timeline(json.refusals))
      : null,
  );
}

// ── routing, sign-in ──────────────────────────────────────────────────────────────────────────

function showLogin(message) {
  clearPage();
  $('#login').hidden = false;
  $('#signout').hidden = true;
  const err = $('#login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('#token').focus();
}

function handleError(err) {
  if (err instanceof Unauthorized) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(err.message === 'no token' ? '' : 'That token was not accepted.');
    return;
  }
  toast(`Error: ${err.message}`);
}

async function route() {
  const hash = location.hash || '#/overview';
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  const pageName = parts[0] || 'overview';
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === pageName);
  if (!sessionStorage.getItem(TOKEN_KEY)) return showLogin('');
  $('#login').hidden = true;
  $('#signout').hidden = false;
  try {
    if (pageName === 'queue') await queuePage(params);
    else if (pageName === 'message' && parts[1]) await messagePage(decodeURIComponent(parts[1]));
    else if (pageName === 'bounces') await bouncesPage(params);
    else if (pageName === 'track') await trackPage(params);
    else await overviewPage(params);
    document.body.dataset.page = pageName;
  } catch (err) {
    handleError(err);
  }
}

$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('#token').value.trim());
  $('#token').value = '';
  route();
});
$('#signout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin('');
});
$('#find').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('#find-text').value.trim();
  if (!text) return;
  location.hash = `#/track?${new URLSearchParams({ [$('#find-by').value]: text })}`;
});
window.addEventListener('hashchange', route);
route();
