#!/usr/bin/env bash
# A first, rough throughput run with wrk (Debian package `wrk`): GET /healthz as the HTTP-only
# reference, then 3-event batches from returning and from new visitors, with storage.sync =
# normal and full. Each tracker run starts on a fresh database in a temporary folder.
# Usage: bench/wrk/run.sh [seconds per run, default 10] [connections, default 32]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "install wrk first: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -p jss-tracker >&2
bin=$PWD/target/release/jss-tracker
scripts=$PWD/bench/wrk
port=18080

run() { # run SYNC LABEL URL [SCRIPT]
  local dir; dir=$(mktemp -d)
  (cd "$dir" && "$bin" init >/dev/null 2>&1)
  local key; key=$(grep -oP '^key = "\K[0-9a-f]+' "$dir/tracker.toml")
  (cd "$dir" && RUST_LOG=warn JSS_TRACKER__SERVER__LISTEN=127.0.0.1:$port JSS_TRACKER__STORAGE__SYNC=$1 \
    exec "$bin" serve >/dev/null 2>&1) &
  local pid=$!
  sleep 1
  local url=${3//KEY/$key}
  local out; out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency ${4:+-s "$scripts/$4"} "$url")
  local rss; rss=$(ps -o rss= -p "$(pgrep -P $pid || echo $pid)" | tail -1)
  kill $pid; wait $pid 2>/dev/null || true
  printf '%-34s %10s req/s   p50 %8s   p99 %8s   rss %6s KiB\n' "$2" \
    "$(awk '/Requests\/sec/{print $2}' <<<"$out")" \
    "$(awk '$1=="50%"{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")" "$rss"
  rm -rf "$dir"
}

track="http://127.0.0.1:$port/sitecore/api/jss/track/event?sc_apikey=KEY"
run normal "GET /healthz (HTTP only)" "http://127.0.0.1:$port/healthz"
run normal "returning visitors, sync=normal" "$track" returning-visitors.lua
run normal "new visitors, sync=normal" "$track" new-visitors.lua
run full "returning visitors, sync=full" "$track" returning-visitors.lua
echo "each tracking request carries 3 events (page view, page event, goal)"
