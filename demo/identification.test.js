// Visitor identification in a real browser. The tracker runs with robots.unclassified = "robot"
// (Sitecore's way: a visitor is a robot until the identification script proves otherwise). An
// app page on another origin of the same site includes the tracker's
// /layouts/system/VisitorIdentification.js; headless Chromium, with an ordinary desktop user
// agent (HeadlessChrome is itself a robot marker), tracks, moves the mouse, and tracks again:
// only what follows the identification is stored, and the device cookie ends in |True. Then the
// same through an app that rewrites /layouts/system/* and the tracking service to the tracker
// (a same-origin proxy, as Next.js rewrites do).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { launch, DESKTOP_CHROME } = require('./chromium');
const { startTracker } = require('./tracker-process');

const PREFIX = '/sitecore/api/jss/track';

let browser;
let tracker;
let crossOrigin; // the app page on its own port, calling the tracker cross-origin
let proxied; // the app that rewrites the tracker's paths to itself

/** An HTTP server on 127.0.0.1 and a free port. */
function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** The app's page: the identification script, and a `track` function for the test to call. */
function page(scriptSrc, trackingBase, apiKey) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>app</title>
<script src="${scriptSrc}"></script></head>
<body style="height: 3000px"><h1>An app page</h1>
<script>
  window.track = (events) =>
    fetch('${trackingBase}${PREFIX}/event?sc_apikey=${apiKey}', {
      method: 'POST',
      credentials: 'include',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(events),
    }).then((response) => response.json());
</script></body></html>`;
}

/** Starts `jss-tracker serve` with the robot policy and a key for the given origins. */
async function startIdentifyingTracker(origins) {
  const tracker = await startTracker(
    `[robots]\nunclassified = "robot"\n\n[[api_keys]]\nname = "identification-test"\nkey = "identification-test-key"\ncors_origins = ${JSON.stringify(origins)}\n`,
  );
  return { ...tracker, apiKey: 'identification-test-key' };
}

before(async () => {
  // The ports come first: the tracker's key must allow the apps' origins.
  let crossPage = '';
  crossOrigin = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(crossPage);
  });
  let target = 0;
  proxied = await listen(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname.startsWith('/layouts/system/') || url.pathname.startsWith(PREFIX)) {
      // The app's rewrite: forward to the tracker with the browser's cookies, and back.
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const headers = { ...req.headers };
      for (const hop of ['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']) {
        delete headers[hop];
      }
      const upstream = await fetch(`http://127.0.0.1:${target}${req.url}`, {
        method: req.method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      const out = { 'content-type': upstream.headers.get('content-type') || 'text/plain' };
      const cookies = upstream.headers.getSetCookie();
      if (cookies.length) out['set-cookie'] = cookies;
      res.writeHead(upstream.status, out);
      res.end(Buffer.from(await upstream.arrayBuffer()));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page('/layouts/system/VisitorIdentification.js', '', tracker.apiKey));
  });
  const origins = [crossOrigin, proxied].map((s) => `http://localhost:${s.address().port}`);
  tracker = await startIdentifyingTracker(origins);
  target = tracker.port;
  crossPage = page(`${tracker.url}/layouts/system/VisitorIdentification.js`, tracker.url, tracker.apiKey);
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (tracker) tracker.stop();
  if (crossOrigin) crossOrigin.close();
  if (proxied) proxied.close();
});

/** The tracker's device cookie as the browser holds it. */
async function globalCookie(context) {
  const cookies = await context.cookies(tracker.url);
  const cookie = cookies.find((c) => c.name === 'SC_ANALYTICS_GLOBAL_COOKIE');
  return cookie ? cookie.value : '';
}

/** Waits until the device cookie ends in |True (the identification request's answer). */
async function identified(context) {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if ((await globalCookie(context)).endsWith('|True')) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`never identified: ${await globalCookie(context)}`);
}

async function visit(appUrl) {
  const context = await browser.newContext({ userAgent: DESKTOP_CHROME });
  const tab = await context.newPage();
  const errors = [];
  tab.on('pageerror', (error) => errors.push(String(error)));
  await tab.goto(appUrl);
  try {
    // Before any sign of a person: answered as anyone's, not stored.
    assert.deepEqual(await tab.evaluate(() => window.track([{ goalId: 'Register' }])), { tracked: 1 });
    const unidentified = await globalCookie(context);
    assert.match(unidentified, /^[0-9a-f]{32}\|False$/);
    const device = unidentified.split('|')[0];
    assert.equal(await tracker.contactOf(device), null, 'nothing stored before identification');

    // A person moves the mouse.
    await tab.mouse.move(120, 80);
    await tab.mouse.move(240, 160);
    await identified(context);

    assert.deepEqual(
      await tab.evaluate(() => window.track([{ eventId: 'Download' }, { goalId: 'Instant Demo' }])),
      { tracked: 2 },
    );
    const contact = await tracker.contactOf(device);
    assert.ok(contact, 'the identified visitor is stored');
    const events = contact.interactions[0].events;
    assert.deepEqual(
      events.map((e) => e.definitionName),
      ['Download', 'Instant Demo'],
      'the events after the identification, and only those',
    );
    assert.equal(contact.interactions[0].client.browser, 'Chrome');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
}

test('cross-origin: the page includes the tracker\'s identification script; a mouse move makes the visitor a person', async () => {
  await visit(`http://localhost:${crossOrigin.address().port}/`);
});

test('same-origin: through an app that rewrites /layouts/system/* and the tracking service', async () => {
  await visit(`http://localhost:${proxied.address().port}/`);
});
