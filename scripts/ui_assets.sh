#!/usr/bin/env bash
# Installs the web UI's browser libraries (htmx, vega, vega-lite, vega-embed, vega-interpreter) at the exact
# versions of package-lock.json and copies their dist files into tally/static/vendor/
# (git-ignored), which Django serves; nothing is fetched from a CDN at run time.
# Skipped when the lock file has not changed since the last copy.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=tally/static/vendor
stamp="$OUT/.lock-sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -f "$OUT/vega-interpreter.min.js" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "the web UI needs node 20 + npm (apt-get install nodejs npm)" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
mkdir -p "$OUT"
cp node_modules/htmx.org/dist/htmx.min.js \
   node_modules/vega/build/vega.min.js \
   node_modules/vega-lite/build/vega-lite.min.js \
   node_modules/vega-embed/build/vega-embed.min.js "$OUT/"
# Vega's CSP-safe expression interpreter (the page's Content-Security-Policy allows no eval):
# published as an ES module only, so bundled here into a script that sets vegaInterpreter.
npx --no-install esbuild node_modules/vega-interpreter/build/vega-interpreter.js --bundle \
  --format=iife --global-name=vegaInterpreter --minify --log-level=warning \
  --outfile="$OUT/vega-interpreter.min.js"
echo "$want" > "$stamp"
echo "ui assets: $(ls "$OUT" | grep -c '\.js$') files in $OUT"
