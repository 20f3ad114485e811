// Server-side tracking as docs/server-side.md shows it: the documented middleware logic
// (docs/server-side/track-page-view.mjs, run as it is) in an app server, against a real
// tracker with a server-side key. The page view lands in the browser visitor's interaction
// (the same device cookie its own trackingApi call then uses), the stored address is the
// forwarded visitor's, and the same key from a browser origin is refused.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { startTracker, cookieJar, fetchWithJar, BROWSER_USER_AGENT } = require('./helpers');

const SERVER_KEY = 'next-server-key-0123456789';
const MIDDLEWARE = path.join(__dirname, '..', 'docs', 'server-side', 'track-page-view.mjs');

let tracker;
let app;
let appUrl;

before(async () => {
  tracker = await startTracker({
    extraConfig: [
      '[privacy]',
      'ip_anonymization = "off"', // to tell the visitor's address from the app server's
      '[[api_keys]]',
      'name = "next-server"',
      `key = "${SERVER_KEY}"`,
      'server_side = true',
    ].join('\n'),
    // Pages of an app server have no Sitecore item id: kept under one derived from the path.
    env: { JSS_TRACKER__TRACKER__PAGE_VIEWS_WITHOUT_ITEM: 'url' },
  });
  const { trackPageView } = await import(MIDDLEWARE);
  app = http.createServer(async (req, res) => {
    // What Next.js hands a middleware: a Web Request, and a response whose headers it edits.
    const request = new Request(`http://localhost${req.url}`, { method: req.method, headers: req.headers });
    const response = { headers: new Headers() };
    await trackPageView(request, response, {
      tracker: tracker.url,
      key: SERVER_KEY,
      clientIp: req.socket.remoteAddress,
    });
    res.setHeader('set-cookie', response.headers.getSetCookie());
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<h1>page</h1>');
  });
  appUrl = await new Promise((resolve) =>
    app.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${app.address().port}`)),
  );
});

after(() => {
  tracker && tracker.stop();
  app && app.close();
});

/** The browser asking the app for an HTML page, from 127.0.0.2, with its cookies. */
function visit(jar, pagePath) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${appUrl}${pagePath}`,
      {
        localAddress: '127.0.0.2',
        headers: {
          Accept: 'text/html',
          'User-Agent': BROWSER_USER_AGENT,
          Referer: 'https://news.example/',
          ...(jar.header() ? { Cookie: jar.header() } : {}),
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => {
          jar.store(response.headers['set-cookie']);
          resolve(response.statusCode);
        });
      },
    );
    request.on('error', reject);
    request.end();
  });
}

test('the documented middleware tracks every route of the visitor', async () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'server-side.md'), 'utf8');
  assert.ok(doc.includes(fs.readFileSync(MIDDLEWARE, 'utf8')), 'the doc shows this exact file');

  const jar = cookieJar();
  assert.equal(await visit(jar, '/pricing'), 200);
  assert.equal(await visit(jar, '/pricing/teams?seats=5'), 200);
  const device = jar.device();
  assert.match(device, /^[0-9a-f]{32}$/, 'the tracker\'s cookie reached the browser');

  // The browser's own trackingApi-style call, with its key and the cookies it got.
  const browserFetch = fetchWithJar(jar);
  const goal = await browserFetch(`${tracker.url}/sitecore/api/jss/track/event?sc_apikey=${tracker.apiKey}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: 'http://localhost:3000' },
    body: JSON.stringify([{ goalId: 'Register' }]),
  });
  assert.equal(goal.status, 200);

  const { contacts } = await tracker.admin(`/api/v1/contacts?device=${device}`);
  assert.equal(contacts.length, 1);
  const contact = await tracker.admin(`/api/v1/contacts/${contacts[0].id}`);
  assert.equal(contact.interactions.length, 1, 'one visit');
  const visitRecord = contact.interactions[0];
  assert.deepEqual(
    visitRecord.events.map((e) => [e.type, e.url]),
    [
      ['pageView', '/pricing'],
      ['pageView', '/pricing/teams?seats=5'],
      ['goal', '/pricing/teams?seats=5'],
    ],
  );
  assert.equal(visitRecord.events[0].referrer, 'https://news.example/');
  assert.equal(visitRecord.ip, '127.0.0.2', 'the forwarded visitor\'s address');
  assert.equal(visitRecord.client.browser, 'Chrome');

  // The server-side key from a browser origin: refused.
  const refused = await fetch(`${tracker.url}/sitecore/api/track/pageview?sc_apikey=${SERVER_KEY}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: 'http://localhost:3000', 'User-Agent': BROWSER_USER_AGENT },
    body: JSON.stringify({ url: '/x' }),
  });
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error.code, 'origin_not_allowed');
});
