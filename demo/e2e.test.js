// End to end in a real browser: `jss-tracker demo` serves its page on one origin and the tracker
// on another; headless Chromium (Debian's, driven by playwright-core) loads the page, submits
// every form, and what the tracker stored is checked through its admin API. Then the same page
// from an origin the API key does not allow: the browser reports failure, nothing is stored.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { launch, DESKTOP_CHROME } = require('./chromium');

const BIN = process.env.JSS_TRACKER_BIN || path.join(__dirname, '..', 'target', 'debug', 'jss-tracker');
const SCREENSHOT =
  process.env.DEMO_SCREENSHOT || path.join(__dirname, '..', 'target', 'e2e', 'demo-page.png');

let demo;
let browser;

/** Starts `jss-tracker demo` on free ports and reads the URLs and token it prints. */
function startDemo() {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['demo', '--port', '0', '--app-port', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`demo did not start; it printed:\n${out}`)), 60000);
    child.on('exit', (code) => reject(new Error(`demo exited with ${code}; it printed:\n${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (!out.includes('Press Ctrl-C to stop.')) return;
      clearTimeout(timer);
      const field = (name) => new RegExp(`^\\s*${name}:\\s+(\\S+)`, 'm').exec(out)[1];
      resolve({
        child,
        page: field('demo page'),
        tracker: field('tracker'),
        adminToken: field('admin token'),
        async admin(p) {
          const response = await fetch(`${this.tracker}${p}`, {
            headers: { Authorization: `Bearer ${this.adminToken}` },
          });
          assert.equal(response.status, 200, `GET ${p}`);
          return response.json();
        },
        stop() {
          child.removeAllListeners('exit');
          return new Promise((done) => {
            child.on('exit', done);
            child.kill('SIGTERM');
          });
        },
      });
    });
  });
}

before(async () => {
  demo = await startDemo();
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (demo) await demo.stop();
});

/** Submits one form of the page and returns what its result box says, once it says it. */
async function submit(page, kind, fields = {}) {
  for (const [selector, value] of Object.entries(fields)) await page.fill(selector, value);
  const result = page.locator(`#result-${kind}`);
  await page.evaluate((k) => {
    const box = document.getElementById(`result-${k}`);
    delete box.dataset.status;
  }, kind);
  await page.click(`form[data-kind="${kind}"] button[type="submit"]`);
  await page.waitForSelector(`#result-${kind}[data-status]`, { timeout: 60000 });
  return { status: await result.getAttribute('data-status'), text: await result.textContent() };
}

async function expectOk(page, kind, fields) {
  const result = await submit(page, kind, fields);
  assert.equal(result.status, 'ok', `${kind}: ${result.text}`);
  return result;
}

test('the demo page tracks every kind, a batch and a flush, with cookies, from its own origin', async () => {
  const context = await browser.newContext({ userAgent: DESKTOP_CHROME });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  await page.goto(demo.page);
  await page.waitForSelector('body[data-ready="true"]');
  assert.notEqual(new URL(demo.page).origin, new URL(demo.tracker).origin, 'two origins');
  assert.equal(await page.isHidden('#wrong-origin'), true, 'no warning on the right origin');

  // The server's refusal reaches the page: an unknown goal, rejected with the spec's envelope.
  const refused = await submit(page, 'goal', { '#goal-id': 'Regster' });
  assert.equal(refused.status, 'error');
  assert.match(refused.text, /^HTTP 400 unknown_definition: .*goal 'Regster' is not defined/);

  await expectOk(page, 'pageview', { '#page-id': '{A7C3F5B1-2D4E-4F60-8A9B-0C1D2E3F4A5B}', '#page-url': '/styleguide/tracking' });
  await expectOk(page, 'event', { '#event-id': 'Download' });
  await expectOk(page, 'goal', { '#goal-id': 'Instant Demo' });
  await expectOk(page, 'outcome', { '#outcome-id': 'Marketing Lead', '#outcome-value': '100.50', '#outcome-currency': 'USD' });
  await expectOk(page, 'campaign', { '#campaign-id': 'Spring Sale' });
  const batch = await expectOk(page, 'batch', { '#batch-url': '/styleguide/batched' });
  assert.match(batch.text, /Tracked 3 events/);

  // The cookies the browser holds for the tracker (they are the tracker's, not the page's).
  const cookies = await context.cookies(demo.tracker);
  const global = cookies.find((c) => c.name === 'SC_ANALYTICS_GLOBAL_COOKIE');
  assert.ok(global, `the browser kept SC_ANALYTICS_GLOBAL_COOKIE (it has: ${cookies.map((c) => c.name)})`);
  assert.match(global.value, /^[0-9a-f]{32}\|(True|False)$/);
  assert.equal(global.httpOnly, true);
  const device = global.value.split('|')[0];
  assert.ok(cookies.find((c) => c.name === 'ASP.NET_SessionId'), 'a session cookie');

  let { contacts } = await demo.admin(`/api/v1/contacts?device=${device}`);
  assert.equal(contacts.length, 1, 'one contact for the browser');
  const contactId = contacts[0].id;
  let contact = await demo.admin(`/api/v1/contacts/${contactId}`);
  assert.equal(contact.interactions.length, 1, 'one interaction so far');
  const [visit] = contact.interactions;
  assert.equal(visit.open, true);
  assert.deepEqual(
    visit.events.map((e) => [e.type, e.definitionName ?? e.url]),
    [
      ['pageView', '/styleguide/tracking'],
      ['pageEvent', 'Download'],
      ['goal', 'Instant Demo'],
      ['outcome', 'Marketing Lead'],
      ['campaign', 'Spring Sale'],
      ['pageView', '/styleguide/batched'],
      ['pageEvent', 'Search'],
      ['goal', 'Register'],
    ],
  );
  const [firstPage, , , outcome, , batchPage, batchEvent, batchGoal] = visit.events;
  for (const e of visit.events.slice(1, 5)) assert.equal(e.pageViewId, firstPage.id, `${e.type} on the first page`);
  assert.equal(batchEvent.pageViewId, batchPage.id, "the batch's page event is on the batch's page view");
  assert.equal(batchGoal.pageViewId, batchPage.id, "the batch's goal is on the batch's page view");
  assert.equal(outcome.monetaryValue, '100.5');
  assert.equal(outcome.currencyCode, 'USD');
  assert.equal(visit.campaign.name, 'Spring Sale');

  // End the interaction; the next event opens a new one for the same contact.
  const flushed = await expectOk(page, 'flush');
  assert.match(flushed.text, /Interaction ended/);
  await expectOk(page, 'goal', { '#goal-id': 'Newsletter Signup' });

  ({ contacts } = await demo.admin(`/api/v1/contacts?device=${device}`));
  assert.equal(contacts.length, 1, 'still one contact');
  assert.equal(contacts[0].id, contactId);
  contact = await demo.admin(`/api/v1/contacts/${contactId}`);
  assert.equal(contact.interactions.length, 2, 'flush, then a new interaction');
  const [first, second] = contact.interactions;
  assert.equal(first.open, false);
  assert.equal(first.closeReason, 'flush');
  assert.equal(first.events.length, 8, 'the first interaction kept its events');
  assert.equal(second.open, true);
  assert.deepEqual(second.events.map((e) => [e.type, e.definitionName]), [['goal', 'Newsletter Signup']]);
  const after = await context.cookies(demo.tracker);
  assert.equal(after.find((c) => c.name === 'SC_ANALYTICS_GLOBAL_COOKIE').value, global.value, 'same device cookie');

  assert.deepEqual(consoleErrors, [], 'no script errors on the page');
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`screenshot: ${SCREENSHOT}`);
  await context.close();
});

/** Serves the demo page, unchanged, from another origin (same site, another port). */
function mirror(target) {
  return new Promise((resolve) => {
    const server = http.createServer(async (req, res) => {
      const upstream = await fetch(new URL(req.url, target));
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') || 'text/plain' });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

test('from an origin the API key does not allow, the browser reports failure and nothing is stored', async () => {
  const server = await mirror(demo.page);
  const origin = `http://localhost:${server.address().port}`;
  const before = await demo.admin('/api/v1/contacts');
  const context = await browser.newContext({ userAgent: DESKTOP_CHROME });
  const page = await context.newPage();
  const blocked = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') blocked.push(msg.text());
  });
  try {
    await page.goto(`${origin}/`);
    await page.waitForSelector('body[data-ready="true"]');
    for (const kind of ['pageview', 'event', 'goal', 'batch']) {
      const result = await submit(page, kind);
      assert.equal(result.status, 'error', `${kind} must fail from ${origin}`);
      assert.match(result.text, /request failed: .*Failed to fetch/);
    }
    assert.ok(
      blocked.some((line) => /CORS/.test(line)),
      `Chromium says CORS blocked it: ${blocked.join(' | ')}`,
    );
    const cookies = await context.cookies(demo.tracker);
    assert.deepEqual(cookies.map((c) => c.name), [], 'the tracker set no cookies');
    const afterwards = await demo.admin('/api/v1/contacts');
    assert.deepEqual(afterwards, before, 'nothing was stored');
  } finally {
    await context.close();
    server.close();
  }
});

test('opened on the wrong host, the page says why tracking fails and links the right URL', async () => {
  // The demo serves its page on 127.0.0.1 too; the tracker and the API key expect localhost.
  const wrong = new URL(demo.page);
  wrong.hostname = '127.0.0.1';
  const context = await browser.newContext({ userAgent: DESKTOP_CHROME });
  const page = await context.newPage();
  try {
    await page.goto(wrong.href);
    await page.waitForSelector('body[data-ready="true"]');
    const box = page.locator('#wrong-origin');
    assert.equal(await box.isVisible(), true);
    const text = await box.textContent();
    assert.match(text, new RegExp(`open at ${wrong.origin.replace(/\./g, '\\.')}`));
    assert.match(text, /localhost is a different site from 127\.0\.0\.1/);
    assert.equal(await box.locator('a').getAttribute('href'), demo.page);
    const result = await submit(page, 'goal');
    assert.equal(result.status, 'error', 'and tracking does fail there');
    const shot = path.join(path.dirname(SCREENSHOT), 'demo-wrong-host.png');
    await page.screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);
  } finally {
    await context.close();
  }
});
