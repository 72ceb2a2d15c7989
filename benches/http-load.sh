#!/usr/bin/env bash
# Requests per second of the songs app's GET /api/v1/songs/{id}: served from the cache (HIT),
# and with the cache disabled (CACHE_ENABLED=false), side by side with wrk, alternating
# rounds so that both see the same machine. Also the conditional GET (If-None-Match → 304)
# in both modes: a deep ETag (cache on) against a body-hash ETag (cache off).
#
#   bash benches/http-load.sh [rounds, default 3] [seconds per run, default 10]
#
# Needs wrk (Debian: apt-get install wrk). Builds the example in release mode. The app and
# wrk share the machine: with 2 cores, wrk's one thread takes one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
connections=${CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
cargo build --quiet --release --example songs
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/songs"
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export DATABASE_URL="sqlite://$dir/songs.db?mode=rwc" PORT=$port RUST_LOG=warn

start() { # $1: CACHE_ENABLED
    (cd "$dir" && CACHE_ENABLED=$1 exec "$bin" >>"$dir/app.log" 2>&1) &
    pid=$!
    for _ in $(seq 200); do curl -sf "$base/api/v1/cache/health" >/dev/null && return; sleep 0.05; done
    cat "$dir/app.log"; exit 1
}
stop() { kill -INT "$pid"; wait "$pid" || true; }
rps() { # $@: extra wrk arguments; prints requests/s
    wrk -t1 -c"$connections" -d"${secs}s" "$@" "$base/api/v1/songs/1" | awk '/^Requests\/sec/ {print $2}'
}

# Seed: one user, one song (with a realistic body), then warm-up runs.
start true
curl -sf -X POST "$base/api/v1/users" -H 'content-type: application/json' \
    -d '{"name": "Ada", "email": "ada@example.com"}' >/dev/null
content=$(python3 -c 'print("la " * 300)')
curl -sf -X POST "$base/api/v1/songs" -H 'content-type: application/json' \
    -d "{\"title\": \"Blue in Green\", \"artist\": \"Miles Davis\", \"author_id\": 1, \"content\": \"$content\"}" >/dev/null
stop

printf '%-6s %-28s %12s\n' round mode requests/s
for round in $(seq "$rounds"); do
    for enabled in true false; do
        start "$enabled"
        curl -sf "$base/api/v1/songs/1" >/dev/null
        etag=$(curl -sfI "$base/api/v1/songs/1" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}')
        wrk -t1 -c"$connections" -d2s "$base/api/v1/songs/1" >/dev/null # warm-up
        if [ "$enabled" = true ]; then label="cache on (HIT)"; else label="cache off (CACHE_ENABLED=false)"; fi
        printf '%-6s %-28s %12s\n' "$round" "$label" "$(rps)"
        printf '%-6s %-28s %12s\n' "$round" "  If-None-Match → 304" "$(rps -H "If-None-Match: $etag")"
        stop
    done
done
