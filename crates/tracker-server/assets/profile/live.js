// The live page: the server sends the open visits' rows (server-sent events) whenever it looks
// again; the table is replaced in place, without a reload.
'use strict';
(function () {
  const body = document.getElementById('live-rows');
  const status = document.getElementById('live-status');
  const source = new EventSource(body.dataset.stream);
  source.addEventListener('visits', (event) => {
    body.innerHTML = event.data;
    status.textContent = 'updated ' + new Date().toLocaleTimeString();
  });
  source.onerror = () => { status.textContent = 'reconnecting…'; };
})();
