// A real jss-tracker process for the browser tests: `init` in a fresh folder, `conf` (TOML) as a
// conf.d file, served on 127.0.0.1 and a free port; reached as `localhost` (the same site as
// the test pages, so that the browser keeps the tracker's cookies).
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const BIN = process.env.JSS_TRACKER_BIN || path.join(__dirname, '..', 'target', 'debug', 'jss-tracker');

async function startTracker(conf) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jss-tracker-browser-'));
  execFileSync(BIN, ['init'], { cwd: dir, stdio: 'ignore' });
  const config = fs.readFileSync(path.join(dir, 'tracker.toml'), 'utf8');
  const adminToken = /^token = "([0-9a-f]+)"/m.exec(config)[1];
  fs.mkdirSync(path.join(dir, 'conf.d'));
  fs.writeFileSync(path.join(dir, 'conf.d', 'test.toml'), conf);
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0'], {
    cwd: dir,
    env: { RUST_LOG: 'warn', ...process.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let found = null;
    const timer = setTimeout(() => reject(new Error('jss-tracker did not start')), 60000);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) found = Number(m[1]);
      if (line.includes('Press Ctrl-C to stop.')) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.on('exit', (code) => reject(new Error(`jss-tracker exited with ${code}`)));
  });
  const get = async (p) => {
    const response = await fetch(`http://127.0.0.1:${port}${p}`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    });
    assert.equal(response.status, 200, p);
    return response.json();
  };
  return {
    port,
    url: `http://localhost:${port}`,
    /** The contact of a device with all its visits, or null. */
    async contactOf(device) {
      const list = await get(`/api/v1/contacts?device=${device}`);
      return list.contacts.length ? get(`/api/v1/contacts/${list.contacts[0].id}`) : null;
    },
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startTracker };
