#!/usr/bin/env bash
# New-visitor ingest against the no-op baseline, for two binaries alternating in one run (the
# previous landing's and yours): each round starts each binary on a fresh database with
# `server.bench_noop`, runs wrk (2 threads, 64 connections) on `/bench/noop/event`, then on
# `/sitecore/api/jss/track/event`, every request a new visitor's page view with a browser user
# agent, and prints tracking req/s, no-op req/s and their ratio.
# Usage: bench/wrk/ratio.sh OLD_BINARY NEW_BINARY [rounds, default 3] [seconds, default 6]
set -euo pipefail
cd "$(dirname "$0")/../.."
old=$1 new=$2 rounds=${3:-3} secs=${4:-6}
command -v wrk >/dev/null || { echo "install wrk first: apt-get install wrk" >&2; exit 1; }
script=$PWD/bench/wrk/new-visitor-page-view.lua
port=18090

rps() { # rps BINARY PATH
  local dir; dir=$(mktemp -d)
  (cd "$dir" && "$1" init >/dev/null 2>&1)
  local key; key=$(grep -oP '^key = "\K[0-9a-f]+' "$dir/tracker.toml")
  (cd "$dir" && RUST_LOG=error JSS_TRACKER__SERVER__LISTEN=127.0.0.1:$port \
    JSS_TRACKER__SERVER__BENCH_NOOP=true exec "$1" serve >/dev/null 2>&1) &
  local pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local out
  out=$(wrk -t2 -c64 -d"${secs}s" -s "$script" "http://127.0.0.1:$port$2?sc_apikey=$key")
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
  awk '/Requests\/sec/{print $2}' <<<"$out"
}

printf '%-6s %-5s %12s %12s %8s\n' round which "track req/s" "noop req/s" ratio
for round in $(seq 1 "$rounds"); do
  for which in old new; do
    bin=$old; [ "$which" = new ] && bin=$new
    noop=$(rps "$bin" /bench/noop/event)
    track=$(rps "$bin" /sitecore/api/jss/track/event)
    printf '%-6s %-5s %12s %12s %8.3f\n' "$round" "$which" "$track" "$noop" \
      "$(awk -v t="$track" -v n="$noop" 'BEGIN{print t/n}')"
  done
done
