// Bundles src/jss.js (the real `trackingApi` and `NativeDataFetcher` of
// @sitecore-jss/sitecore-jss, at the version package-lock.json pins) into the asset the
// `jss-tracker demo` binary embeds. The output is committed so that `cargo run` works without
// Node.js; CI rebuilds it and fails if the committed file differs.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const version = require('@sitecore-jss/sitecore-jss/package.json').version;
const outfile = path.join(__dirname, '..', 'crates', 'jss-tracker', 'assets', 'demo', 'jss.bundle.js');

// `--check`: build in memory and fail if the committed bundle is not exactly what this builds.
const check = process.argv.includes('--check');

esbuild
  .build({
    entryPoints: [path.join(__dirname, 'src', 'jss.js')],
    bundle: true,
    format: 'iife',
    globalName: 'JSS',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    // The package's debug helper reads process.env; a browser has none.
    define: { 'process.env.DEBUG': 'undefined', 'process.env.NODE_ENV': '"production"' },
    banner: {
      js: `/* @sitecore-jss/sitecore-jss ${version} (Apache-2.0, Sitecore Corporation): trackingApi and NativeDataFetcher, bundled by demo/build.js with esbuild. Do not edit. */`,
    },
    outfile,
    write: !check,
    logLevel: check ? 'warning' : 'info',
  })
  .then((result) => {
    if (!check) return;
    const built = result.outputFiles[0].text;
    const committed = fs.existsSync(outfile) ? fs.readFileSync(outfile, 'utf8') : '';
    if (built !== committed) {
      console.error(`${outfile} is not what demo/build.js builds from package-lock.json; run \`npm run build\` in demo/ and commit it`);
      process.exit(1);
    }
    console.log(`${path.relative(process.cwd(), outfile)} matches its build (${built.length} bytes)`);
  })
  .catch(() => process.exit(1));
