// The script tag in a real browser: a plain HTML page (no JSS, no bundler) on another origin of
// the same site includes `{prefix}/tracker.js` with its API key. Headless Chromium opens it from
// a search page's link: a page view on load with the search page as referrer and the page's
// <meta name="sc-item-id">, two more after history.pushState, and a goal from
// window.jssTracker.goal, all in one interaction. The script is under 2 KB gzipped.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const zlib = require('node:zlib');
const { launch, DESKTOP_CHROME } = require('./chromium');
const { startTracker } = require('./tracker-process');
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


before(async () => {
  let html = '';
  app = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  const origin = `http://localhost:${app.address().port}`;
  tracker = await startTracker(
    `[[api_keys]]\nname = "marketing-site"\nkey = "${KEY}"\ncors_origins = ["${origin}"]\n`,
  );
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
