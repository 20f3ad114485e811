/* jss-tracker's script tag, for pages that are not JSS apps:
   <script src="https://tracker.example.com/sitecore/api/jss/track/tracker.js" data-key="API key" async></script>
   A page view on load and on every history change (pushState, popstate); the page's
   <meta name="sc-item-id"> when present; window.jssTracker.goal(name), .event(name, data),
   .outcome(name, value, currency), .pageView(), .flush(). data-site names the site (sc_site);
   data-flush-on-leave ends the visit with sendBeacon on pagehide. Requests go one after another,
   so that a visit's events follow its page views. */
(function (w, d) {
  var s = d.currentScript;
  if (!s || w.jssTracker) return;
  var src = new URL(s.src, d.baseURI);
  var base = src.origin + src.pathname.replace(/\/tracker\.js$/, '');
  var query = '?sc_apikey=' + encodeURIComponent(s.getAttribute('data-key') || '');
  var site = s.getAttribute('data-site');
  if (site) query += '&sc_site=' + encodeURIComponent(site);
  var queue = Promise.resolve();
  var last = d.referrer;
  function send(url, body) {
    var run = function () {
      // text/plain: a "simple" request, no preflight; the tracker reads it as JSON.
      return fetch(url + query, {
        method: 'POST',
        credentials: 'include',
        keepalive: true,
        headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify(body),
      }).then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) throw new Error((j.error && j.error.message) || r.status);
          return j;
        });
      });
    };
    queue = queue.then(run, run);
    return queue;
  }
  function track(events) {
    return send(base + '/event', events);
  }
  function pageView() {
    var meta = d.querySelector('meta[name="sc-item-id"]');
    var view = { url: location.pathname + location.search, referrer: last || undefined };
    if (meta) view.itemId = meta.content;
    last = location.href;
    return send(src.origin + '/sitecore/api/track/pageview', view);
  }
  function wrap(name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      pageView();
      return result;
    };
  }
  wrap('pushState');
  w.addEventListener('popstate', pageView);
  if (s.hasAttribute('data-flush-on-leave')) {
    w.addEventListener('pagehide', function () {
      navigator.sendBeacon(base + '/flush' + query);
    });
  }
  w.jssTracker = {
    pageView: pageView,
    goal: function (name) {
      return track([{ goalId: name }]);
    },
    event: function (name, data) {
      return track([{ eventId: name, data: data }]);
    },
    outcome: function (name, value, currency) {
      return track([{ outcomeId: name, monetaryValue: value, currencyCode: currency }]);
    },
    flush: function () {
      return send(base + '/flush', []);
    },
  };
  pageView();
})(window, document);
