// The Experience Profile in a real browser: sign-in required everywhere (the API answers 401),
// search by a goal reached, a contact's visits and events in tracked order with the live one
// marked, a visit appearing on the live page without a reload, the dashboard's figures equal to
// what the test tracked, and anonymous contacts leaving search when the setting is off. Each
// page's screenshot goes to target/e2e/profile-*.png.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { launch, DESKTOP_CHROME } = require('./chromium');

const BIN = process.env.JSS_TRACKER_BIN || path.join(__dirname, '..', 'target', 'debug', 'jss-tracker');
const SHOTS = path.join(__dirname, '..', 'target', 'e2e');
const PAGE_ID = '{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}';

let browser;
let tracker;

/** `jss-tracker serve` in a fresh folder; `env` adds settings. */
async function startTracker(dir, env = {}) {
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0'], {
    cwd: dir,
    env: { RUST_LOG: 'warn', ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let found = null;
    const timer = setTimeout(() => reject(new Error('jss-tracker did not start')), 60000);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) found = m[1];
      if (line.includes('Press Ctrl-C to stop.')) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.on('exit', (code) => reject(new Error(`jss-tracker exited with ${code}`)));
  });
  const config = fs.readFileSync(path.join(dir, 'tracker.toml'), 'utf8');
  return {
    url,
    apiKey: /^key = "([0-9a-f]+)"/m.exec(config)[1],
    token: /^token = "([0-9a-f]+)"/m.exec(config)[1],
    stop() {
      child.removeAllListeners('exit');
      return new Promise((done) => {
        child.on('exit', done);
        child.kill('SIGTERM');
      });
    },
  };
}

/** One visitor, as a browser would send its batches: its own cookies, a desktop user agent. */
function visitor(t) {
  let cookies = new Map();
  return {
    async track(events) {
      const response = await fetch(`${t.url}/sitecore/api/jss/track/event?sc_apikey=${t.apiKey}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': DESKTOP_CHROME,
          Cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        },
        body: JSON.stringify(events),
      });
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const at = pair.indexOf('=');
        if (/max-age=0/i.test(line)) cookies.delete(pair.slice(0, at));
        else cookies.set(pair.slice(0, at), pair.slice(at + 1));
      }
      assert.equal(response.status, 200, await response.clone().text());
      return response.json();
    },
    async flush() {
      const response = await fetch(`${t.url}/sitecore/api/jss/track/flush?sc_apikey=${t.apiKey}`, {
        method: 'POST',
        headers: { 'User-Agent': DESKTOP_CHROME, Cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      });
      assert.equal(response.status, 200);
      cookies = new Map([...cookies].filter(([k]) => k === 'SC_ANALYTICS_GLOBAL_COOKIE'));
    },
    device() {
      return (cookies.get('SC_ANALYTICS_GLOBAL_COOKIE') || '').split('|')[0];
    },
  };
}

async function admin(t, p) {
  const response = await fetch(`${t.url}${p}`, { headers: { Authorization: `Bearer ${t.token}` } });
  assert.equal(response.status, 200, p);
  return response.json();
}

let dir;
const visitors = {};

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jss-tracker-profile-'));
  execFileSync(BIN, ['init'], { cwd: dir, stdio: 'ignore' });
  tracker = await startTracker(dir);
  // What the test tracks, and so what the dashboard must show.
  visitors.buyer = visitor(tracker);
  await visitors.buyer.track([{ pageId: PAGE_ID, url: '/' }, { goalId: 'Register' }]);
  await visitors.buyer.track([
    { pageId: PAGE_ID, url: '/pricing' },
    { eventId: 'Download' },
    { outcomeId: 'Purchase', currencyCode: 'USD', monetaryValue: '1337.5' },
  ]);
  await visitors.buyer.flush();
  await visitors.buyer.track([{ pageId: PAGE_ID, url: '/thanks' }]); // a second visit, left open
  visitors.bouncer = visitor(tracker);
  await visitors.bouncer.track([{ pageId: PAGE_ID, url: '/' }]);
  await visitors.bouncer.flush();
  visitors.buyerContact = (await admin(tracker, `/api/v1/contacts?device=${visitors.buyer.device()}`)).contacts[0].id;
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (tracker) await tracker.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function signedIn() {
  const context = await browser.newContext({ userAgent: DESKTOP_CHROME, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${tracker.url}/profile/contacts`);
  await page.fill('input[name=token]', tracker.token);
  await page.click('button[type=submit]');
  await page.waitForURL('**/profile/contacts');
  return { context, page };
}

test('without signing in, every page sends you to sign in, and the API answers 401', async () => {
  const context = await browser.newContext({ userAgent: DESKTOP_CHROME });
  const page = await context.newPage();
  try {
    for (const p of ['/', '/profile/dashboard', '/profile/contacts', '/profile/live', '/profile/definitions']) {
      await page.goto(`${tracker.url}${p}`);
      assert.match(new URL(page.url()).pathname, /^\/profile\/login$/, p);
    }
    await page.screenshot({ path: path.join(SHOTS, 'profile-login.png') });
    await page.fill('input[name=token]', 'not-the-token');
    await page.click('button[type=submit]');
    assert.match(await page.textContent('.error'), /do not sign anyone in/);
    const api = await fetch(`${tracker.url}/api/v1/contacts`);
    assert.equal(api.status, 401);
    const cookies = await context.cookies(tracker.url);
    assert.deepEqual(cookies.filter((c) => c.name === 'jss_profile'), [], 'no session');
  } finally {
    await context.close();
  }
});

test('search finds a contact by a goal it reached; its page shows the visits and events in order, the live one marked', async () => {
  const { context, page } = await signedIn();
  try {
    const session = (await context.cookies(tracker.url)).find((c) => c.name === 'jss_profile');
    assert.ok(session.httpOnly, 'HttpOnly');
    assert.equal(session.sameSite, 'Strict');
    assert.ok(session.secure, 'Secure: a loopback host is a secure context');
    await page.selectOption('select[name=goal]', 'Register');
    await page.click('form.search button');
    assert.equal((await page.textContent('#total')).trim(), '1 contact(s)');
    await page.screenshot({ path: path.join(SHOTS, 'profile-contacts.png'), fullPage: true });
    await page.click('#contacts tbody a');
    const visits = page.locator('section.visit');
    assert.equal(await visits.count(), 2);
    // Newest first: the open visit, marked live.
    assert.equal(await visits.nth(0).getAttribute('data-open'), 'true');
    assert.equal(await visits.nth(0).locator('.live').count(), 1);
    assert.equal(await visits.nth(1).locator('.live').count(), 0);
    const items = await visits.nth(1).locator('li').allTextContents();
    assert.deepEqual(
      items.map((t) => t.replace(/\s+·.*$/s, '').trim().split('\n')[0]),
      [
        'Page view: /',
        'Goal: Register',
        'Page view: /pricing',
        'Page event: Download',
        'Outcome: Purchase (1337.5 USD)',
      ],
    );
    assert.equal((await page.textContent('#engagement .value')).trim(), '155', 'Register 50, Download 5, Purchase 100');
    await page.screenshot({ path: path.join(SHOTS, 'profile-contact.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('a visit tracked now appears on the live page without a reload', async () => {
  const { context, page } = await signedIn();
  try {
    await page.goto(`${tracker.url}/profile/live`);
    let navigations = 0;
    page.on('framenavigated', () => { navigations += 1; });
    const newcomer = visitor(tracker);
    const started = Date.now();
    await newcomer.track([{ pageId: PAGE_ID, url: '/live' }, { goalId: 'Instant Demo' }]);
    const contact = (await admin(tracker, `/api/v1/contacts?device=${newcomer.device()}`)).contacts[0];
    await page.waitForSelector(`#live-rows a[href="/profile/contacts/${contact.id}"]`, { timeout: 60000 });
    console.log(`the new visit appeared on the live page after ${Date.now() - started} ms`);
    assert.equal(navigations, 0, 'no reload');
    await page.screenshot({ path: path.join(SHOTS, 'profile-live.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('the dashboard shows what was tracked', async () => {
  const { page, context } = await signedIn();
  try {
    await page.goto(`${tracker.url}/profile/dashboard`);
    // Computed from the visits tracked above (the live test's newcomer included): the buyer's
    // two visits, the bouncer's, the newcomer's.
    const expected = await admin(tracker, '/api/v1/dashboard');
    assert.equal(expected.visits, 4);
    assert.equal(expected.pageViews, 5);
    const value = async (id) => (await page.textContent(`#${id} .value`)).trim();
    assert.equal(await value('visits'), '4');
    assert.equal(await value('page-views'), '5');
    assert.equal(
      await value('bounce-rate'),
      '50.0 %',
      'the bouncer and the buyer\'s open visit: one page view and nothing else',
    );
    assert.equal(await value('engagement'), String(50 + 5 + 100 + 20));
    const goals = await page.locator('#goals tbody tr').allTextContents();
    assert.equal(goals.length, 2);
    assert.match(goals.join('|'), /Register\s*1\s*25\.0 %/);
    assert.match(goals.join('|'), /Instant Demo\s*1\s*25\.0 %/);
    assert.match(await page.textContent('#outcomes'), /Purchase\s*1\s*1337\.50 USD/);
    assert.equal(await page.locator('.chart svg rect').count(), 30, 'a bar per day of the 30');
    await page.screenshot({ path: path.join(SHOTS, 'profile-dashboard.png'), fullPage: true });
    await page.goto(`${tracker.url}/profile/definitions`);
    await page.screenshot({ path: path.join(SHOTS, 'profile-definitions.png'), fullPage: true });
    // Usable on a phone: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${tracker.url}/profile/dashboard`);
    const wider = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wider <= 390, `the page is ${wider} px wide on a 390 px phone`);
    await page.screenshot({ path: path.join(SHOTS, 'profile-phone.png'), fullPage: true });
  } finally {
    await context.close();
  }
});

test('with profile.index_anonymous_contacts = false, anonymous contacts leave search', async () => {
  await tracker.stop();
  tracker = await startTracker(dir, { JSS_TRACKER__PROFILE__INDEX_ANONYMOUS_CONTACTS: 'false' });
  const { page, context } = await signedIn();
  try {
    assert.equal((await page.textContent('#total')).trim(), '0 contact(s)');
    const list = await admin(tracker, `/api/v1/contacts?device=${visitors.buyer.device()}`);
    assert.equal(list.total, 0, 'nor by the API');
    // A direct link still works.
    await page.goto(`${tracker.url}/profile/contacts/${visitors.buyerContact}`);
    assert.equal(await page.locator('section.visit').count(), 2);
  } finally {
    await context.close();
  }
});
