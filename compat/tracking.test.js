// Compatibility: the real, unmodified JSS tracking clients from the npm registry against a real
// jss-tracker process, each with a fetcher of the kind its version's docs use. What was stored is
// checked through the admin API.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const axios = require('axios');
const { startTracker, cookieJar, fetchWithJar, BROWSER_USER_AGENT } = require('./helpers');

// The tracking API disables itself during server-side rendering (no `window.document`); these
// tests play the browser, so give it one.
globalThis.window = { document: {} };

const PAGE = '{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}';
let tracker;

before(async () => {
  tracker = await startTracker();
});

after(() => tracker && tracker.stop());

/** The axios data fetcher of the JSS sample apps (withCredentials), with the jar as the browser. */
function axiosFetcher(jar) {
  return (url, data) =>
    axios({
      url,
      method: data ? 'POST' : 'GET',
      data,
      withCredentials: true,
      headers: { Cookie: jar.header(), 'User-Agent': BROWSER_USER_AGENT },
    }).then((response) => {
      jar.store(response.headers['set-cookie']);
      return response;
    });
}

/**
 * One visit through `trackingApi.trackEvent`: a page view, a batch, an outcome, a campaign, a
 * single (non-array) event, an unknown goal (rejected), flush, then one more event.
 */
async function visit(trackEvent, options, jar) {
  await trackEvent([{ pageId: PAGE, url: '/styleguide' }], options);
  await trackEvent([{ eventId: 'Download' }, { goalId: 'Instant Demo' }], options);
  await trackEvent([{ outcomeId: 'Opportunity', currencyCode: 'USD', monetaryValue: 99.95 }], options);
  await trackEvent([{ campaignId: 'Test Campaign' }], options);
  await trackEvent({ goalId: 'Register' }, options);
  await assert.rejects(trackEvent([{ goalId: 'Regster' }], options));
  const session = jar.get('ASP.NET_SessionId');
  assert.ok(session, 'a session cookie was set');
  await trackEvent([], { ...options, action: 'flush' });
  assert.equal(jar.get('ASP.NET_SessionId'), undefined, 'flush ended the session');
  await trackEvent([{ goalId: 'Register', data: 'second visit' }], options);
}

async function checkStored(jar) {
  const device = jar.device();
  assert.match(jar.get('SC_ANALYTICS_GLOBAL_COOKIE'), /^[0-9a-f]{32}\|(True|False)$/);
  const { contacts } = await tracker.admin(`/api/v1/contacts?device=${device}`);
  assert.equal(contacts.length, 1, 'one contact for the device');
  const contact = await tracker.admin(`/api/v1/contacts/${contacts[0].id}`);
  assert.equal(contact.interactions.length, 2, 'flush, then a new interaction');
  const [first, second] = contact.interactions;
  assert.equal(first.open, false);
  assert.equal(first.closeReason, 'flush');
  assert.deepEqual(
    first.events.map((e) => [e.type, e.definitionName ?? e.url]),
    [
      ['pageView', '/styleguide'],
      ['pageEvent', 'Download'],
      ['goal', 'Instant Demo'],
      ['outcome', 'Opportunity'],
      ['campaign', 'Test Campaign'],
      ['goal', 'Register'],
    ],
  );
  const pageView = first.events[0];
  for (const event of first.events.slice(1)) assert.equal(event.pageViewId, pageView.id);
  assert.equal(first.events[3].monetaryValue, '99.95');
  assert.equal(first.events[3].currencyCode, 'USD');
  assert.equal(first.campaign.name, 'Test Campaign');
  // Download 5 + Instant Demo 20 + Opportunity 40 + Register 50.
  assert.equal(first.engagementValue, 115);
  // The contact's total counts the open second visit's Register (50) as it stands.
  assert.equal(contact.engagementValue, 165);
  assert.equal(second.open, true);
  assert.deepEqual(second.events.map((e) => [e.type, e.definitionName, e.data]), [['goal', 'Register', 'second visit']]);
}

test('@sitecore-jss/sitecore-jss-tracking 19.0.2 with the sample apps\' axios fetcher', async () => {
  const { trackingApi } = require('jss-tracking-19');
  const jar = cookieJar();
  const options = { host: tracker.url, querystringParams: { sc_apikey: tracker.apiKey }, fetcher: axiosFetcher(jar) };
  await visit(trackingApi.trackEvent, options, jar);
  await checkStored(jar);
});

test('@sitecore-jss/sitecore-jss 21.11.0 trackingApi with its AxiosDataFetcher', async () => {
  const { trackingApi } = require('jss-21/tracking');
  const { AxiosDataFetcher } = require('jss-21');
  const jar = cookieJar();
  const dataFetcher = new AxiosDataFetcher({
    onReq: (config) => {
      config.headers.Cookie = jar.header();
      config.headers['User-Agent'] = BROWSER_USER_AGENT;
      return config;
    },
    onRes: (response) => {
      jar.store(response.headers['set-cookie']);
      return response;
    },
  });
  const options = {
    host: tracker.url,
    querystringParams: { sc_apikey: tracker.apiKey },
    fetcher: (url, data) => dataFetcher.fetch(url, data),
  };
  await visit(trackingApi.trackEvent, options, jar);
  await checkStored(jar);
});

for (const version of ['22', '23']) {
  const label = version === '22' ? '22.12.4' : '23.0.0';

  test(`@sitecore-jss/sitecore-jss ${label} trackingApi with its NativeDataFetcher`, async () => {
    const { trackingApi } = require(`jss-${version}/tracking`);
    const { NativeDataFetcher } = require(`jss-${version}`);
    const jar = cookieJar();
    const dataFetcher = new NativeDataFetcher({ credentials: 'include', fetch: fetchWithJar(jar) });
    const options = {
      host: tracker.url,
      querystringParams: { sc_apikey: tracker.apiKey },
      fetcher: (url, data) => dataFetcher.fetch(url, data),
    };
    await visit(trackingApi.trackEvent, options, jar);
    await checkStored(jar);
  });

  test(`@sitecore-jss/sitecore-jss ${label} trackingApi with an app's older axios fetcher (request-init wrapper)`, async () => {
    const { trackingApi } = require(`jss-${version}/tracking`);
    const jar = cookieJar();
    const options = { host: tracker.url, querystringParams: { sc_apikey: tracker.apiKey }, fetcher: axiosFetcher(jar) };
    await visit(trackingApi.trackEvent, options, jar);
    await checkStored(jar);
  });
}
