// A real jss-tracker process for the compatibility tests, and a cookie jar that behaves like a
// browser's for the tracker's origin (Node's HTTP clients keep no cookies of their own).
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const BIN = process.env.JSS_TRACKER_BIN || path.join(__dirname, '..', 'target', 'debug', 'jss-tracker');

/**
 * Starts `jss-tracker serve` on a free port with a fresh `init` config and database;
 * `extraConfig` (TOML) is appended to its `tracker.toml`, `env` added to its environment.
 */
async function startTracker({ extraConfig = '', env = {} } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jss-tracker-compat-'));
  execFileSync(BIN, ['init'], { cwd: dir, stdio: 'ignore' });
  if (extraConfig) fs.appendFileSync(path.join(dir, 'tracker.toml'), `\n${extraConfig}\n`);
  const config = fs.readFileSync(path.join(dir, 'tracker.toml'), 'utf8');
  const apiKey = /^key = "([0-9a-f]+)"/m.exec(config)[1];
  const adminToken = /^token = "([0-9a-f]+)"/m.exec(config)[1];
  const child = spawn(BIN, ['serve'], {
    cwd: dir,
    env: { RUST_LOG: 'warn', ...process.env, ...env, JSS_TRACKER__SERVER__LISTEN: '127.0.0.1:0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let found = null;
    const timer = setTimeout(() => reject(new Error('jss-tracker did not start')), 60000);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) found = m[1];
      if (line.includes('Press Ctrl-C to stop.')) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.on('exit', (code) => reject(new Error(`jss-tracker exited with ${code}`)));
  });
  return {
    url,
    apiKey,
    async admin(p) {
      const response = await fetch(`${url}${p}`, { headers: { Authorization: `Bearer ${adminToken}` } });
      if (!response.ok) throw new Error(`GET ${p}: ${response.status}`);
      return response.json();
    },
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A browser-like cookie jar for one visitor. */
function cookieJar() {
  const cookies = new Map();
  return {
    header() {
      return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    },
    store(setCookies) {
      for (const line of setCookies || []) {
        const pair = line.split(';')[0];
        const at = pair.indexOf('=');
        const name = pair.slice(0, at).trim();
        if (/;\s*max-age=0/i.test(line)) cookies.delete(name);
        else cookies.set(name, pair.slice(at + 1).trim());
      }
    },
    get(name) {
      return cookies.get(name);
    },
    device() {
      return (cookies.get('SC_ANALYTICS_GLOBAL_COOKIE') || '').split('|')[0];
    },
  };
}

/**
 * The user agent of the browser these tests stand in for: the tracker keeps robots (Node's and
 * axios's own user agents among them) out of its data, as it should.
 */
const BROWSER_USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** `fetch` that sends and keeps the jar's cookies, as a browser does with credentials: 'include'. */
function fetchWithJar(jar) {
  return async (url, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('User-Agent', BROWSER_USER_AGENT);
    if (jar.header()) headers.set('Cookie', jar.header());
    const response = await fetch(url, { ...init, headers });
    jar.store(response.headers.getSetCookie());
    return response;
  };
}

module.exports = { startTracker, cookieJar, fetchWithJar, BROWSER_USER_AGENT };
