// The demo page's code: each form builds the events a JSS app would send and calls the real
// `trackingApi.trackEvent` (window.JSS, bundled from the npm package) with a NativeDataFetcher
// that sends credentials, as the JSS docs require for the tracker's cookies to flow cross-origin.
'use strict';

(function () {
  const config = window.DEMO_CONFIG;
  const { trackingApi, NativeDataFetcher } = window.JSS;

  const dataFetcher = new NativeDataFetcher({ credentials: 'include' });
  const trackingApiOptions = {
    host: config.trackerHost,
    querystringParams: { sc_apikey: config.apiKey },
    fetcher: (url, init) => dataFetcher.fetch(url, init),
  };

  document.getElementById('tracker-host').textContent = config.trackerHost;
  document.getElementById('app-origin').textContent = window.location.origin;
  explainWrongOrigin();
  for (const [list, names] of Object.entries(config.definitions)) {
    const datalist = document.getElementById(list);
    for (const name of names) {
      const option = document.createElement('option');
      option.value = name;
      datalist.appendChild(option);
    }
  }

  /**
   * Opened on another origin than the one the demo's API key allows (say 127.0.0.1:3000 instead
   * of localhost:3000), every request fails: the tracker refuses the origin (CORS), and when the
   * hosts differ the browser drops its cookies as third-party ones. Say so, and link the right URL.
   */
  function explainWrongOrigin() {
    if (window.location.origin === config.appOrigin) return;
    const box = document.getElementById('wrong-origin');
    const trackerSite = new URL(config.trackerHost).hostname;
    const right = `${config.appOrigin}${window.location.pathname}`;
    const cookies = trackerSite === window.location.hostname
      ? ''
      : ` and ${trackerSite} is a different site from ${window.location.hostname}, so the browser would drop the tracker's cookies too`;
    box.textContent =
      `Tracking fails from this page: it is open at ${window.location.origin}, but the demo's API key ` +
      `allows only ${config.appOrigin}${cookies}. Open `;
    const link = document.createElement('a');
    link.href = right;
    link.textContent = right;
    box.append(link, ' instead.');
    box.hidden = false;
  }

  /** The events each form sends, from its fields. */
  const builders = {
    event: (f) => [{ eventId: f.eventId }],
    goal: (f) => [{ goalId: f.goalId }],
    outcome: (f) => [
      {
        outcomeId: f.outcomeId,
        currencyCode: f.currencyCode || undefined,
        monetaryValue: f.monetaryValue === '' ? undefined : Number(f.monetaryValue),
      },
    ],
    campaign: (f) => [{ campaignId: f.campaignId }],
    pageview: (f) => [{ pageId: f.pageId, url: f.url }],
    batch: (f) => [
      { pageId: '{B8D4A6C2-3E5F-4071-9BAC-1D2E3F4A5B6C}', url: f.url },
      { eventId: 'Search', data: 'demo batch' },
      { goalId: 'Register' },
    ],
  };

  /** Says what the server answered: its error envelope's code and message when it refused. */
  function describeError(error) {
    const response = error && error.response;
    if (response) {
      const body = response.data && response.data.error;
      if (body) {
        return `HTTP ${response.status} ${body.code}: ${body.message}`;
      }
      return `HTTP ${response.status} ${response.statusText}`;
    }
    // fetch() rejects without a response when CORS refuses the origin or the tracker is down.
    return `request failed: ${error && error.message ? error.message : error} ` +
      '(is the tracker running, and is this origin allowed for the API key?)';
  }

  async function submit(kind, form, result) {
    const fields = Object.fromEntries(new FormData(form).entries());
    const button = form.querySelector('button');
    button.disabled = true;
    result.className = 'result';
    result.textContent = '';
    try {
      if (kind === 'flush') {
        await trackingApi.trackEvent([], { ...trackingApiOptions, action: 'flush' });
        show(result, 'ok', 'Interaction ended (flush). The next event opens a new interaction.');
      } else {
        const events = builders[kind](fields);
        await trackingApi.trackEvent(events, trackingApiOptions);
        show(result, 'ok', `Tracked ${events.length} event${events.length === 1 ? '' : 's'}: ` +
          events.map(label).join(', '));
      }
    } catch (error) {
      show(result, 'error', describeError(error));
    } finally {
      button.disabled = false;
    }
  }

  function label(event) {
    if (event.pageId) return `page view ${event.url}`;
    if (event.goalId) return `goal ${event.goalId}`;
    if (event.outcomeId) return `outcome ${event.outcomeId}`;
    if (event.campaignId) return `campaign ${event.campaignId}`;
    return `event ${event.eventId}`;
  }

  function show(result, status, text) {
    result.className = `result ${status}`;
    result.dataset.status = status;
    result.textContent = text;
  }

  for (const form of document.querySelectorAll('form[data-kind]')) {
    const kind = form.dataset.kind;
    const result = document.getElementById(`result-${kind}`);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit(kind, form, result);
    });
  }
  document.body.dataset.ready = 'true';
})();
