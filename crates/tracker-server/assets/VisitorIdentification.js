/* jss-tracker visitor identification: the first mouse move, touch, scroll or key press on the
   page proves a person is there; the tracker then keeps this visitor's events (see
   robots.unclassified) and its SC_ANALYTICS_GLOBAL_COOKIE ends in |True. No dependencies. */
(function () {
  'use strict';
  var script = document.currentScript;
  var src = script && script.src ? script.src : '/layouts/system/VisitorIdentification.js';
  // Loaded as /layouts/system/VisitorIdentification.js (Sitecore's path, also through an app's
  // same-origin rewrite of /layouts/system/*) or as {service prefix}/identify.js.
  var target = /VisitorIdentification\.js(\?.*)?$/.test(src)
    ? src.replace(/VisitorIdentification\.js(\?.*)?$/, 'VisitorIdentificationCSS.aspx')
    : src.replace(/identify\.js(\?.*)?$/, 'identify');
  var kinds = ['mousemove', 'touchstart', 'scroll', 'keydown'];
  var sent = false;
  function identify() {
    if (sent) return;
    sent = true;
    for (var i = 0; i < kinds.length; i++) {
      window.removeEventListener(kinds[i], identify, true);
    }
    var url = target + '?tstamp=' + Date.now();
    if (window.fetch) {
      window.fetch(url, { credentials: 'include', cache: 'no-store', mode: 'cors' })['catch'](function () {});
    } else {
      var request = new XMLHttpRequest();
      request.open('GET', url);
      request.withCredentials = true;
      request.send();
    }
  }
  for (var i = 0; i < kinds.length; i++) {
    window.addEventListener(kinds[i], identify, { capture: true, passive: true });
  }
})();
