/**
 * Screenshots of every dashboard page at 1280×800, for reviews and docs (not run by the tests;
 * the files are not committed):
 *
 *   npx tsx bench/screenshots.ts /tmp/postern-shots
 *
 * Starts a gateway on loopback with a test DNS zone and a sink on 127.0.0.2 (the admin tests'
 * world), plays an hour of simulated traffic on its clock — delivered, soft-bounced and
 * hard-bounced mail to three domains, with retries — then opens the dashboard in headless
 * Chromium and photographs the overview, queue browser, a message page and the bounce report.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { messageWith, startOpsWorld, TOKEN } from '../test/admin/ops-world.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: tsx bench/screenshots.ts <output directory>\n');
  process.exit(2);
}
const dir = resolve(out);
mkdirSync(dir, { recursive: true });

const w = await startOpsWorld();
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const depth = w.gw.gateway.ops?.admin?.depth;
  const domains = ['dst.test', 'other.test', 'example.net'];
  let n = 0;
  let bounced = '';
  let deferred = '';
  // One simulated hour: every 2 minutes a few messages, some bouncing soft or hard.
  for (let step = 0; step < 30; step++) {
    const count = 2 + (step % 4);
    for (let i = 0; i < count; i++) {
      n++;
      const domain = domains[n % 3];
      const kind = n % 7 === 0 ? 'hard' : n % 5 === 0 ? 'soft' : 'user';
      const to = `${kind}${n}@${domain}`;
      const id = await w.send([to], { data: messageWith(`m${n}@src.test`, to), rcptParams: kind === 'hard' ? ['NOTIFY=NEVER'] : [] });
      if (kind === 'hard' && !bounced) bounced = id;
      if (kind === 'soft' && step > 20) deferred = id;
    }
    await w.advance(120_000);
    depth?.sample();
  }
  await w.settle();

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${w.api}/#/overview`);
  await page.fill('#token', TOKEN);
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('.chart canvas').length >= 3);
  await page.screenshot({ path: join(dir, '1-overview.png') });

  await page.goto(`${w.api}/#/queue?state=queued`);
  await page.waitForSelector('#queue-table');
  await page.screenshot({ path: join(dir, '2-queue.png') });

  await page.goto(`${w.api}/#/message/${deferred || bounced}`);
  await page.waitForSelector('#timeline');
  await page.screenshot({ path: join(dir, '3-message-deferred.png') });

  await page.goto(`${w.api}/#/message/${bounced}`);
  await page.waitForSelector('#timeline');
  await page.screenshot({ path: join(dir, '4-message-bounced.png') });

  await page.goto(`${w.api}/#/bounces?window=24h`);
  await page.waitForSelector('#bounce-table');
  await page.screenshot({ path: join(dir, '5-bounces.png') });

  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${w.api}/#/overview`);
  await page.reload();
  await page.waitForSelector('#login:not([hidden])');
  await page.screenshot({ path: join(dir, '0-sign-in.png') });
  process.stdout.write(`screenshots in ${dir}\n`);
} finally {
  await browser.close();
  await w.stop();
}
