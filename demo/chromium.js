// Headless Chromium for the browser tests: Debian's (CHROMIUM_PATH, default /usr/bin/chromium),
// driven by playwright-core, and the user agent of an ordinary desktop Chrome: headless Chromium
// says `HeadlessChrome`, which the tracker rightly takes for a robot and keeps out of its data.
'use strict';

const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const DESKTOP_CHROME =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** Launches Chromium; the machine's network is closed, so it must not dial Google at start. */
function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

module.exports = { launch, DESKTOP_CHROME };
