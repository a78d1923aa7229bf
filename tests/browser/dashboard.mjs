// The mailguard dashboard in a real browser (Debian's chromium through playwright-core):
// log in, check the status light, the counters against `mailguard status --json`, the
// chart, that the stylesheet applies under the CSP; block (confirm) -> red, unblock
// (confirm) -> green; the quarantine: release one, delete one, the counters move; save a
// screenshot. Exits non-zero on any failed check.
//
// Environment (run.sh sets it): MAILGUARD_BIN, STATE_DIR, AUTH_FILE, ACCOUNT, PASSWORD,
// SCREENSHOT.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run tests/browser/run.sh)`);
  return v;
};
const BIN = env('MAILGUARD_BIN');
const STATE = env('STATE_DIR');
const AUTH_FILE = env('AUTH_FILE');
const ACCOUNT = env('ACCOUNT');
const PASSWORD = env('PASSWORD');
const SCREENSHOT = env('SCREENSHOT');

let failures = 0;
function check(ok, what) {
  if (ok) {
    console.log(`ok - ${what}`);
  } else {
    failures += 1;
    console.log(`not ok - ${what}`);
  }
}

function storeStatus() {
  return JSON.parse(
    execFileSync(BIN, ['status', '--account', ACCOUNT, '--json', '--state-dir', STATE], {
      encoding: 'utf8',
    }),
  );
}

/** Starts the dashboard on a free loopback port; resolves to [process, base URL]. */
function startDashboard() {
  const args = ['dashboard', '--listen', '127.0.0.1:0', '--state-dir', STATE, '--auth-file', AUTH_FILE];
  const child = spawn(BIN, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      const m = line.match(/listening on (http:\/\/\S+?)\/?$/);
      if (m) resolve([child, m[1]]);
      else reject(new Error(`unexpected dashboard output: ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`dashboard exited with ${code}`)));
  });
}

const userDataDir = mkdtempSync(join(tmpdir(), 'mailguard-chromium-'));
let server;
let browser;
try {
  const [child, base] = await startDashboard();
  server = child;
  // A fresh profile directory (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1100, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  // Nothing may be fetched from anywhere but the dashboard itself.
  const foreign = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url());
  });

  // Not logged in: the login form.
  await page.goto(`${base}/accounts/${ACCOUNT}`);
  check(page.url() === `${base}/login`, 'an anonymous visit lands on the login form');
  await page.fill('#user', ACCOUNT);
  await page.fill('#password', 'wrong-password');
  await page.click('#login');
  await page.waitForLoadState();
  const refusal = (await page.locator('#login-problem').allInnerTexts()).join(' ');
  check(refusal.includes('Wrong name or password'), `a wrong password is refused (${refusal})`);
  await page.fill('#user', ACCOUNT);
  await page.fill('#password', PASSWORD);
  await page.click('#login');
  await page.waitForLoadState();
  check(
    page.url() === `${base}/accounts/${ACCOUNT}`,
    `logged in and redirected to the panel (at ${page.url()}: ${await page
      .locator('#login-problem')
      .allInnerTexts()})`,
  );

  // The wrong password's 401 is logged by the browser as a failed load: expected.
  problems.length = 0;

  // Status light, counters, chart.
  const light = page.locator('#status-light');
  check((await light.getAttribute('data-colour')) === 'green', 'the status light is green');
  const bg = await light.evaluate((el) => getComputedStyle(el).backgroundImage);
  check(bg.includes('rgb(30, 158, 74)'), `the light is drawn green by the stylesheet (${bg})`);
  const st = storeStatus();
  for (const [id, key] of [
    ['sent-total', 'sent_total'],
    ['sent-today', 'sent_today'],
    ['errors-total', 'errors_total'],
    ['queued', 'queued'],
    ['held', 'held'],
  ]) {
    const shown = (await page.locator(`#${id}`).innerText()).trim();
    check(shown === String(st[key]), `${id} shows ${shown}, the store says ${st[key]}`);
  }
  check(st.sent_total > 0 && st.errors_total > 0, 'the test data has sent mail and errors');
  const chart = page.locator('svg#history-chart');
  check((await chart.count()) === 1, 'the history chart is on the page');
  check(
    (await page.locator('svg#history-chart rect.bar.sent[data-day]').count()) === 30,
    'the chart has 30 days',
  );
  const tallest = await page
    .locator('svg#history-chart rect.bar.sent[data-day]')
    .evaluateAll((rs) => Math.max(...rs.map((r) => r.getBBox().height)));
  check(tallest > 20, `the chart's bars are drawn (tallest ${tallest.toFixed(1)} px)`);
  const barFill = await page
    .locator('svg#history-chart rect.bar.sent[data-day]')
    .first()
    .evaluate((el) => getComputedStyle(el).fill);
  check(barFill === 'rgb(30, 158, 74)', `sent bars are green (${barFill})`);
  check(
    (await page.locator('#error-log tbody tr').count()) >= 1 &&
      (await page.locator('#error-log').innerText()).includes('550'),
    'the error log lists failures with their code',
  );
  check((await page.locator('#scripts tbody tr').count()) >= 1, 'the scripts table has rows');

  // Block: confirmation page, tick, confirm; the light turns red.
  await page.click('#action-block');
  check(page.url() === `${base}/accounts/${ACCOUNT}/block`, 'block asks for confirmation');
  await page.check('#confirm-check');
  await Promise.all([page.waitForURL(/\?done=block$/), page.click('#confirm-button')]);
  check((await light.getAttribute('data-colour')) === 'red', 'after block the light is red');
  check((await page.locator('#status-name').innerText()) === 'inactive', 'the status is inactive');
  check(storeStatus().status === 'inactive', 'the store says inactive');
  check((await page.locator('#transitions').innerText()).includes('block'), 'the block is logged');

  // Unblock: back to green.
  await page.click('#action-unblock');
  await page.check('#confirm-check');
  await Promise.all([page.waitForURL(/\?done=unblock$/), page.click('#confirm-button')]);
  check((await light.getAttribute('data-colour')) === 'green', 'after unblock the light is green');
  check(storeStatus().status === 'active', 'the store says active');

  // Quarantine: release one (from the list), delete one (from its page); the counters move.
  await Promise.all([page.waitForURL(/\/quarantine$/), page.click('#quarantine-link')]);
  const num = async (sel) => Number(await page.locator(sel).innerText());
  const q0 = await num('#quarantine-count');
  const queued0 = await num('#queued');
  check(q0 === 3, `the quarantine holds the 3 refused messages (${q0})`);
  const ids = await page
    .locator('#quarantine tbody tr[data-id]')
    .evaluateAll((rows) => rows.map((r) => r.dataset.id));
  check(ids.length === 3, `the list shows them (${ids.join(',')})`);
  check(
    (await page.locator('#quarantine').innerText()).includes('raw-ip-link'),
    'the list shows the reasons',
  );
  await page.check(`#pick-${ids[0]}`);
  await Promise.all([page.waitForURL(/\?done=release$/), page.click('#release-selected')]);
  check((await num('#quarantine-count')) === q0 - 1, 'after release the quarantine counter drops by one');
  check((await num('#queued')) === queued0 + 1, 'after release the queued counter rises by one');
  await Promise.all([page.waitForURL(/\/quarantine\/\d+$/), page.click(`#show-${ids[1]}`)]);
  const preview = await page.locator('#preview').innerText();
  check(
    preview.includes('[address]') && preview.includes('[link]') && !preview.includes('@example.org'),
    `the owner sees a redacted preview (${preview.trim()})`,
  );
  await Promise.all([page.waitForURL(/\?done=delete$/), page.click('#delete')]);
  check((await num('#quarantine-count')) === q0 - 2, 'after delete the quarantine counter drops again');
  const qlog = await page.locator('#quarantine-log').innerText();
  check(
    qlog.includes('release') && qlog.includes('delete') && qlog.includes(`dashboard:account:${ACCOUNT}`),
    'release and delete are logged with who did them',
  );
  const left = JSON.parse(
    execFileSync(BIN, ['quarantine', 'list', '--json', '--account', ACCOUNT, '--state-dir', STATE], {
      encoding: 'utf8',
    }),
  );
  check(left.length === q0 - 2, `the store agrees (${left.length} left)`);

  check(foreign.length === 0, `no request left the dashboard (${foreign.join(', ')})`);
  check(problems.length === 0, `no console errors or CSP violations (${problems.join(' | ')})`);

  // The screenshot, without the one-off notice.
  await page.goto(`${base}/accounts/${ACCOUNT}`);
  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`screenshot: ${SCREENSHOT}`);
} catch (e) {
  failures += 1;
  console.log(`not ok - ${e.stack || e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) server.kill();
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(failures === 0 ? 'browser test: all checks passed' : `browser test: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
