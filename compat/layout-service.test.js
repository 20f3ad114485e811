// The Layout Service through jss-tracker, with the real `RestLayoutService` of
// @sitecore-jss/sitecore-jss 23.0.0, called as a Next.js server calls it:
// `fetchLayoutData(path, language, req, res)` forwards the visitor's cookies, user agent and
// referer, sends the visitor's address as X-Forwarded-For, and copies the tracker's Set-Cookie
// back to the visitor's response. The route comes back, its page view lands in the visitor's
// interaction (their browser, their address), and a later browser `trackingApi.trackEvent` goal
// with the cookies the visitor got lands in the same interaction.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { RestLayoutService } = require('jss-23/layout');
const { trackingApi } = require('jss-23/tracking');
const { NativeDataFetcher } = require('jss-23');
const { startTracker, cookieJar, BROWSER_USER_AGENT } = require('./helpers');

const LAYOUT = fs.readFileSync(
  path.join(__dirname, '..', 'crates', 'jss-tracker', 'tests', 'fixtures', 'layout-styleguide.json'),
  'utf8',
);
const ROUTE_ITEM = '52961eea-cca7-4313-a5dc-0e8b3b3a0f79';
const LAYOUT_KEY = 'sitecore-layout-key-0123456789';

/** Starts an HTTP server on 127.0.0.1 and a free port; resolves to its URL. */
function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)));
}

let upstream;
let upstreamUrl;
let tracker;
let app;
let appUrl;

before(async () => {
  // The Sitecore Layout Service: the recorded JSS sample route.
  upstream = http.createServer((req, res) => {
    const query = new URL(req.url, 'http://x').searchParams;
    if (query.get('item') === '/styleguide') {
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(LAYOUT);
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"sitecore":{"context":{"language":"en"},"route":null}}');
    }
  });
  upstreamUrl = await listen(upstream);
  tracker = await startTracker({
    extraConfig: [
      '[privacy]',
      'ip_anonymization = "off"', // to tell the visitor's address from the app server's
      '[layout_service]',
      `upstream = "${upstreamUrl}"`,
      '[[api_keys]]',
      'name = "sitecore-layout"',
      `key = "${LAYOUT_KEY}"`,
      'server_side = true',
    ].join('\n'),
  });
  // The Next.js app's server: renders a route with the layout it fetches for the visitor.
  const layoutService = new RestLayoutService({
    apiHost: tracker.url,
    apiKey: LAYOUT_KEY,
    siteName: 'jss-sample',
    configurationName: 'jss',
  });
  app = http.createServer(async (req, res) => {
    try {
      const layout = await layoutService.fetchLayoutData('/styleguide', 'en', req, res);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ route: layout.sitecore.route.name }));
    } catch (error) {
      res.writeHead(500);
      res.end(String(error));
    }
  });
  appUrl = await listen(app);
});

after(() => {
  tracker && tracker.stop();
  app && app.close();
  upstream && upstream.close();
});

/** The visitor's browser asking the app for a page, from 127.0.0.2, with its cookies. */
function visitPage(jar) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${appUrl}/styleguide`,
      {
        localAddress: '127.0.0.2',
        headers: {
          'User-Agent': BROWSER_USER_AGENT,
          Referer: 'https://search.example/?q=styleguide',
          ...(jar.header() ? { Cookie: jar.header() } : {}),
        },
      },
      (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => {
          jar.store(response.headers['set-cookie']);
          resolve({ status: response.statusCode, body: JSON.parse(body) });
        });
      },
    );
    request.on('error', reject);
    request.end();
  });
}

test('RestLayoutService 23.x through jss-tracker: the route is a page view of the visitor', async () => {
  const jar = cookieJar();
  const page = await visitPage(jar);
  assert.equal(page.status, 200);
  assert.equal(page.body.route, 'styleguide', 'the layout came back');
  assert.match(jar.get('SC_ANALYTICS_GLOBAL_COOKIE') || '', /^[0-9a-f]{32}\|/, 'our cookie reached the visitor');

  const { contacts } = await tracker.admin(`/api/v1/contacts?device=${jar.device()}`);
  assert.equal(contacts.length, 1);
  const contact = await tracker.admin(`/api/v1/contacts/${contacts[0].id}`);
  const visit = contact.interactions[0];
  const view = visit.events[0];
  assert.equal(view.type, 'pageView');
  assert.equal(view.pageId.replace(/[{}]/g, '').toLowerCase(), ROUTE_ITEM);
  assert.equal(view.url, '/styleguide');
  assert.equal(view.language, 'en');
  assert.equal(visit.client.browser, 'Chrome', JSON.stringify(visit));
  assert.equal(view.referrer, 'https://search.example/?q=styleguide', 'the visitor\'s referer');
  assert.equal(visit.ip, '127.0.0.2', 'the visitor\'s address, not the app server\'s');

  // Later, in the browser: trackingApi with the cookies the visitor got.
  globalThis.window = { document: {} };
  const fetcher = new NativeDataFetcher({ credentials: 'include' });
  await trackingApi.trackEvent([{ goalId: 'Register' }], {
    host: tracker.url,
    querystringParams: { sc_apikey: tracker.apiKey },
    fetcher: (url, data) =>
      fetcher.fetch(url, {
        ...data,
        headers: { ...(data && data.headers), Cookie: jar.header(), 'User-Agent': BROWSER_USER_AGENT },
      }),
  });
  const after = await tracker.admin(`/api/v1/contacts/${contacts[0].id}`);
  assert.equal(after.interactions.length, 1, 'one visit');
  assert.deepEqual(
    after.interactions[0].events.map((e) => e.type),
    ['pageView', 'goal'],
  );
});
