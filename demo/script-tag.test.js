// The script tag in a real browser: a plain HTML page (no JSS, no bundler) on another origin of
// the same site includes `{prefix}/tracker.js` with its API key. Headless Chromium opens it from
// a search page's link: a page view on load with the search page as referrer and the page's
// <meta name="sc-item-id">, two more after history.pushState, and a goal from
// window.jssTracker.goal, all in one interaction. The script is under 2 KB gzipped.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const zlib = require('node:zlib');
const { launch, DESKTOP_CHROME } = require('./chromium');

const BIN = process.env.JSS_TRACKER_BIN || path.join(__dirname, '..', 'target', 'debug', 'jss-tracker');
const ITEM = '{52961EEA-CCA7-4313-A5DC-0E8B3B3A0F79}';
const KEY = 'script-tag-test-key';

let browser;
let tracker;
let app;

function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function startTracker(origin) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jss-tracker-script-'));
  execFileSync(BIN, ['init'], { cwd: dir, stdio: 'ignore' });
  const config = fs.readFileSync(path.join(dir, 'tracker.toml'), 'utf8');
  const adminToken = /^token = "([0-9a-f]+)"/m.exec(config)[1];
  fs.mkdirSync(path.join(dir, 'conf.d'));
  fs.writeFileSync(
    path.join(dir, 'conf.d', 'test.toml'),
    `[[api_keys]]\nname = "marketing-site"\nkey = "${KEY}"\ncors_origins = ["${origin}"]\n`,
  );
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0'], {
    cwd: dir,
    env: { RUST_LOG: 'warn', ...process.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let found = null;
    const timer = setTimeout(() => reject(new Error('jss-tracker did not start')), 60000);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) found = Number(m[1]);
      if (line.includes('Press Ctrl-C to stop.')) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.on('exit', (code) => reject(new Error(`jss-tracker exited with ${code}`)));
  });
  const get = async (p) => {
    const response = await fetch(`http://127.0.0.1:${port}${p}`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    });
    assert.equal(response.status, 200, p);
    return response.json();
  };
  return {
    url: `http://localhost:${port}`,
    async contactOf(device) {
      const list = await get(`/api/v1/contacts?device=${device}`);
      return list.contacts.length ? get(`/api/v1/contacts/${list.contacts[0].id}`) : null;
    },
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

before(async () => {
  let html = '';
  app = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  const origin = `http://localhost:${app.address().port}`;
  tracker = await startTracker(origin);
  html = `<!doctype html><html><head><meta charset="utf-8"><title>Pricing</title>
<meta name="sc-item-id" content="${ITEM}">
<script src="${tracker.url}/sitecore/api/jss/track/tracker.js" data-key="${KEY}" async></script>
</head><body><h1>A plain page</h1></body></html>`;
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (tracker) tracker.stop();
  if (app) app.close();
});

test('the script tag tracks page views, history changes and a goal in one visit', async () => {
  const script = await fetch(`${tracker.url}/sitecore/api/jss/track/tracker.js`);
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type'), /javascript/);
  const gzipped = zlib.gzipSync(Buffer.from(await script.arrayBuffer()), { level: 9 }).length;
  assert.ok(gzipped < 2048, `tracker.js is ${gzipped} bytes gzipped`);

  const context = await browser.newContext({ userAgent: DESKTOP_CHROME });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`http://localhost:${app.address().port}/pricing`, { referer: 'https://search.example/?q=pricing' });
  // The load's page view is answered before jssTracker's calls run (one queue).
  await page.waitForFunction(() => window.jssTracker !== undefined);
  const goal = await page.evaluate(async () => {
    history.pushState({}, '', '/pricing/teams');
    history.pushState({}, '', '/pricing/enterprise?plan=2');
    return window.jssTracker.goal('Register');
  });
  assert.deepEqual(goal, { tracked: 1 });
  assert.deepEqual(errors, []);

  const cookies = await context.cookies(tracker.url);
  const device = cookies.find((c) => c.name === 'SC_ANALYTICS_GLOBAL_COOKIE').value.split('|')[0];
  const contact = await tracker.contactOf(device);
  assert.ok(contact, 'the visitor was stored');
  assert.equal(contact.interactions.length, 1, 'one visit');
  const events = contact.interactions[0].events;
  assert.deepEqual(
    events.map((e) => [e.type, e.url]),
    [
      ['pageView', '/pricing'],
      ['pageView', '/pricing/teams'],
      ['pageView', '/pricing/enterprise?plan=2'],
      ['goal', '/pricing/enterprise?plan=2'], // the page it happened on
    ],
  );
  assert.equal(events[0].referrer, 'https://search.example/?q=pricing');
  assert.equal(contact.interactions[0].landingUrl, '/pricing', 'the visit\'s landing page');
  assert.equal(contact.interactions[0].referrer, 'https://search.example/?q=pricing');
  assert.equal(events[0].pageId.replace(/[{}]/g, '').toLowerCase(), ITEM.replace(/[{}]/g, '').toLowerCase());
  await context.close();
});
