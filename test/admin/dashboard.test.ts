/**
 * The web dashboard end to end in headless Chromium (Debian's chromium, driven by
 * playwright-core): mail that is delivered, soft-bounced and hard-bounced shows with the right
 * state; a retry and a delete from the queue browser take effect in the queue; the message page
 * shows the attempt timeline with the next hop's reply text; the bounce report ranks the
 * destination with its replies. Skipped (with a message) only when /usr/bin/chromium is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { HARD_REPLY, SOFT_REPLY, messageWith, startOpsWorld, TOKEN, type OpsWorld } from './ops-world.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) to run the dashboard tests`;
if (skip) process.stdout.write(`# SKIP dashboard tests: ${skip}\n`);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
}

async function signIn(page: Page, w: OpsWorld, token = TOKEN): Promise<void> {
  await page.goto(`${w.api}/#/overview`);
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
}

test('dashboard: states, retry and delete from the queue browser, the message timeline, the bounce report', { skip, timeout: 120_000 }, async () => {
  const w = await startOpsWorld();
  let browser: Browser | null = null;
  try {
    const delivered = await w.send(['ok@dst.test'], { data: messageWith('ok.web@src.test', 'ok@dst.test') });
    const soft = await w.send(['soft@dst.test']);
    const hard = await w.send(['hard@dst.test'], { rcptParams: ['NOTIFY=NEVER'] });
    const doomed = await w.send(['soft.doomed@other.test']);
    await w.settle();

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(15_000);
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('dialog', (d) => void d.accept());

    // Sign in once; the overview comes up with its numbers and three charts.
    await signIn(page, w);
    await page.waitForSelector('#kpis');
    assert.match(await page.textContent('#kpis') ?? '', /queued/);
    await page.waitForFunction(() => document.querySelectorAll('.chart canvas').length >= 3);

    // Every message with its state.
    await page.goto(`${w.api}/#/queue?state=`);
    await page.waitForSelector('#queue-table');
    const stateOf = async (id: string): Promise<string> => (await page.textContent(`tr[data-id="${id}"] td.state`))?.trim() ?? '';
    assert.equal(await stateOf(delivered), 'delivered');
    assert.equal(await stateOf(soft), 'deferred');
    assert.equal(await stateOf(hard), 'bounced');

    // Retry from the queue browser: another attempt is made at once.
    await page.goto(`${w.api}/#/queue?state=queued`);
    await page.waitForSelector(`tr[data-id="${soft}"]`);
    await page.click(`tr[data-id="${soft}"] button[data-action="retry"]`);
    await page.waitForSelector('#toast:not([hidden])');
    assert.match(await page.textContent('#toast') ?? '', /retry .*: done/);
    await w.settle();
    assert.equal(w.message(soft).recipients[0].attempts, 2, 'the retry made a second attempt');

    // Delete from the queue browser (confirmed): gone from the queue, recipients deleted.
    await page.click(`tr[data-id="${doomed}"] button[data-action="delete"]`);
    await page.waitForSelector(`tr[data-id="${doomed}"]`, { state: 'detached' });
    assert.deepEqual([w.message(doomed).state, w.message(doomed).recipients[0].state], ['done', 'deleted']);

    // The message page: the timeline from the connection to the bounce, with the next hop's reply.
    await page.goto(`${w.api}/#/message/${hard}`);
    await page.waitForSelector('#timeline');
    assert.equal((await page.textContent('#message-state'))?.trim(), 'bounced');
    const kinds = await page.$$eval('#timeline li', (lis) => lis.map((li) => (li as HTMLElement).dataset.kind));
    assert.deepEqual(kinds, ['connection', 'rcpt', 'accepted', 'attempt', 'bounced']);
    const attempt = await page.textContent('#timeline li[data-kind="attempt"]') ?? '';
    assert.ok(attempt.includes(HARD_REPLY), attempt);
    assert.match(attempt, /next hop smtp:\S*127\.0\.0\.2/);

    // The deferred message's page: its attempts, each with the soft reply.
    await page.goto(`${w.api}/#/message/${soft}`);
    await page.waitForSelector('#timeline');
    assert.equal(await page.locator('#timeline li[data-kind="attempt"]').count(), 2);
    assert.ok((await page.textContent('#timeline') ?? '').includes(SOFT_REPLY));
    assert.equal((await page.textContent('#message-state'))?.trim(), 'deferred');

    // The bounce report ranks the destination with the replies it gave.
    await page.goto(`${w.api}/#/bounces?window=3650d`);
    await page.waitForSelector('#bounce-table');
    const row = await page.textContent('#bounce-table tr[data-domain="dst.test"]') ?? '';
    assert.ok(row.includes(HARD_REPLY) && row.includes(SOFT_REPLY), row);

    // Search by Message-ID from the header bar.
    await page.selectOption('#find-by', 'message_id');
    await page.fill('#find-text', 'ok.web@src.test');
    await page.click('#find button');
    await page.waitForSelector('#track-table');
    assert.ok((await page.textContent('#track-table') ?? '').includes(delivered));

    assert.deepEqual(errors, [], 'no script errors');
  } finally {
    await browser?.close();
    await w.stop();
  }
});

test('dashboard: a wrong token is refused and the sign-in form says so', { skip, timeout: 60_000 }, async () => {
  const w = await startOpsWorld();
  let browser: Browser | null = null;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await signIn(page, w, 'not-the-token-at-all');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.match(await page.textContent('#login-error') ?? '', /not accepted/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('postern.admin.token')), null);
  } finally {
    await browser?.close();
    await w.stop();
  }
});
