#!/usr/bin/env bash
# Load with faults: the songs app on the tiered store (memory in front of Redis) under a
# fixed request rate while its Redis is killed (SIGKILL) and, 10 s later, restarted empty.
#
# What it runs, all on loopback, all its own (a private redis-server on a free port, never
# 6379; a SQLite database in a temporary directory; everything removed on exit):
#   1. capacity: the uncached app (CACHE_ENABLED=false) flat out for a few seconds, to show
#      how far below saturation the chosen rate is;
#   2. baseline: the uncached app at the fixed rate → the "uncached p99";
#   3. the tiered app at the same rate, in three back-to-back phases:
#        before  Redis up;
#        during  Redis killed with kill -9 as the phase starts, restarted empty (no RDB, no
#                AOF) OUTAGE_SECS later; the phase runs on a little past the restart;
#        after   Redis back.
#   During 2 and 3 a background loop PUTs random songs (WRITES_PER_SEC), so invalidations
#   happen during the outage too, and GET /api/v1/cache/health is polled twice a second.
# Reads are GET /api/v1/songs/{id} spread uniformly over all the seeded ids (oha's
# --rand-regex-url), at a fixed rate (oha -q) with latency correction: a request that waits
# behind a stalled one counts from when it should have been sent (no coordinated omission).
#
# Targets, printed as PASS/FAIL (the script exits 1 on a FAIL):
#   - zero non-2xx answers and zero transport errors, reads and writes, before, during and
#     after the outage;
#   - p99 of the reads during the outage < 2 × the uncached p99.
#
#   bash scripts/load-with-faults.sh
#
# Settings (environment): RATE (reads/s, default 1000), CONNECTIONS (32), SONGS (100),
# WRITES_PER_SEC (4), BEFORE_SECS (25), DURING_SECS (12), OUTAGE_SECS (10), AFTER_SECS (25),
# BASELINE_SECS (20), CAPACITY_SECS (5; 0 skips it), CACHE_REDIS_TIMEOUT_MS (100),
# CACHE_BREAKER_COOLDOWN_MS (500). KEEP=1 keeps the temporary directory (logs, oha's JSON).
#
# Needs oha (cargo install oha --locked), redis-server and redis-cli (Debian: apt-get install
# redis-server), curl, jq and python3. Builds the example in release mode with the `redis`
# feature. The app, oha and redis-server share the machine (2 cores here): keep RATE well
# below the capacity line it prints, or the numbers measure saturation, not the cache.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=${RATE:-1000}
connections=${CONNECTIONS:-32}
songs=${SONGS:-100}
writes_per_sec=${WRITES_PER_SEC:-4}
before_secs=${BEFORE_SECS:-25}
during_secs=${DURING_SECS:-12}
outage_secs=${OUTAGE_SECS:-10}
after_secs=${AFTER_SECS:-25}
baseline_secs=${BASELINE_SECS:-20}
capacity_secs=${CAPACITY_SECS:-5}
redis_timeout_ms=${CACHE_REDIS_TIMEOUT_MS:-100}
breaker_cooldown_ms=${CACHE_BREAKER_COOLDOWN_MS:-500}

oha=$(command -v oha || true)
if [ -z "$oha" ] && [ -x "$HOME/.cargo/bin/oha" ]; then oha="$HOME/.cargo/bin/oha"; fi
if [ -z "$oha" ]; then
    echo "oha is needed (a load generator that holds a fixed rate): cargo install oha --locked" >&2
    exit 1
fi
for tool in redis-server redis-cli curl jq python3; do
    command -v "$tool" >/dev/null || {
        echo "$tool is needed (Debian: apt-get install redis-server curl jq python3)" >&2
        exit 1
    }
done
if [ "$outage_secs" -ge "$during_secs" ]; then
    echo "OUTAGE_SECS ($outage_secs) must be shorter than DURING_SECS ($during_secs)" >&2
    exit 1
fi

echo "building the songs example (release, --features redis)..." >&2
cargo build --quiet --release --example songs --features redis
bin="$PWD/target/release/examples/songs"

dir=$(mktemp -d "${TMPDIR:-/tmp}/load-with-faults.XXXXXX")
app_pid='' redis_pid='' writer_pid='' poller_pid='' oha_pid=''
stop_tree() { # $1: a pid we started; its children first (curl inside a loop)
    [ -n "$1" ] || return 0
    pkill -P "$1" 2>/dev/null || true
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "$oha_pid" "$writer_pid" "$poller_pid" "$app_pid"; do stop_tree "$pid"; done
    if [ -n "$redis_pid" ]; then kill -9 "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local port
    while :; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        [ "$port" != 6379 ] && [ "$port" != "${app_port:-}" ] && { echo "$port"; return; }
    done
}
app_port=$(free_port)
redis_port=$(free_port)
base="http://127.0.0.1:$app_port"
now_ms() { date +%s%3N; }

start_redis() {
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$dir" --logfile "$dir/redis.log" &
    redis_pid=$!
    for _ in $(seq 200); do
        [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && return
        sleep 0.05
    done
    echo "redis-server did not start on port $redis_port" >&2
    cat "$dir/redis.log" >&2
    exit 1
}

start_app() { # $1: cached | uncached
    local -a env=(DATABASE_URL="sqlite://$dir/songs.db?mode=rwc" PORT="$app_port" RUST_LOG=warn)
    if [ "$1" = cached ]; then
        env+=(REDIS_URL="redis://127.0.0.1:$redis_port" CACHE_KEY_PREFIX=loadfaults
            CACHE_REDIS_TIMEOUT_MS="$redis_timeout_ms" CACHE_BREAKER_COOLDOWN_MS="$breaker_cooldown_ms")
    else
        env+=(CACHE_ENABLED=false)
    fi
    echo "== app ($1) ==" >>"$dir/app.log"
    (cd "$dir" && exec env -u REDIS_URL -u CACHE_ENABLED "${env[@]}" "$bin" >>"$dir/app.log" 2>&1) &
    app_pid=$!
    for _ in $(seq 200); do
        curl -sf "$base/api/v1/cache/health" >/dev/null && return
        sleep 0.05
    done
    echo "the songs app did not start:" >&2
    cat "$dir/app.log" >&2
    exit 1
}
stop_app() {
    kill -INT "$app_pid"
    wait "$app_pid" || true
    app_pid=''
}

# Reads at the fixed rate for $2 seconds, over the ids 1..SONGS (an alternation: oha's
# regex generator picks a branch uniformly); oha's JSON goes to $dir/$1.json. $3: & to run
# in the background (oha_pid), anything else waits.
reads() {
    "$oha" --no-tui -z "${2}s" -w -q "$rate" --latency-correction -c "$connections" -t 10s \
        --rand-regex-url "$base/api/v1/songs/($(seq -s '|' "$songs"))" \
        --output-format json -o "$dir/$1.json" >/dev/null 2>"$dir/$1.oha.log" &
    oha_pid=$!
    [ "${3:-}" = '&' ] || { wait "$oha_pid"; oha_pid=''; }
}

# Background writes: PUT /api/v1/songs/{random id} WRITES_PER_SEC times a second; one line a
# write in $dir/writes.log: start (epoch ms), HTTP status (000: no answer), seconds.
start_writer() {
    (
        n=0
        interval=$(python3 -c "print(1 / $writes_per_sec)")
        while [ ! -e "$dir/stop-writer" ]; do
            n=$((n + 1))
            id=$((RANDOM % songs + 1))
            t=$(now_ms)
            out=$(curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}' -X PUT \
                -H 'content-type: application/json' -d "{\"title\": \"Song $id, take $n\"}" \
                "$base/api/v1/songs/$id" || true)
            echo "$t ${out:-000 0}" >>"$dir/writes.log"
            sleep "$interval"
        done
    ) &
    writer_pid=$!
}
stop_writer() {
    touch "$dir/stop-writer"
    wait "$writer_pid" || true
    writer_pid=''
    rm -f "$dir/stop-writer"
}

# Health polling: one line every 0.5 s in $dir/health.log: epoch ms, then the data fields.
start_poller() {
    (
        while [ ! -e "$dir/stop-poller" ]; do
            t=$(now_ms)
            h=$(curl -s -m 2 "$base/api/v1/cache/health" |
                jq -c '.data | {healthy, redis_connected, fallback_active, error}' 2>/dev/null || true)
            echo "$t ${h:-"{\"unanswered\":true}"}" >>"$dir/health.log"
            sleep 0.5
        done
    ) &
    poller_pid=$!
}
stop_poller() {
    touch "$dir/stop-poller"
    wait "$poller_pid" || true
    poller_pid=''
}

declare -A phase_start phase_end phase_load
phase() { # $1: name, $2: seconds, $3: & (background) or nothing
    phase_start[$1]=$(now_ms)
    reads "$1" "$2" "${3:-}"
}
phase_done() {
    phase_end[$1]=$(now_ms)
    phase_load[$1]=$(cut -d' ' -f1 /proc/loadavg)
}

# --- seed, capacity, baseline (uncached) -----------------------------------------------
start_redis
start_app uncached
curl -sf -X POST "$base/api/v1/users" -H 'content-type: application/json' \
    -d '{"name": "Ada", "email": "ada@example.com"}' >/dev/null
content=$(python3 -c 'print("la " * 100)')
for i in $(seq "$songs"); do
    curl -sf -o /dev/null -X POST "$base/api/v1/songs" -H 'content-type: application/json' \
        -d "{\"title\": \"Song $i\", \"artist\": \"Artist $((i % 7))\", \"author_id\": 1, \"content\": \"$content\"}"
done
[ "$(curl -sf "$base/api/v1/songs/count" | jq .data.count)" = "$songs" ] || {
    echo "seeding failed" >&2
    exit 1
}
capacity=''
if [ "$capacity_secs" -gt 0 ]; then
    echo "capacity: the uncached app flat out for ${capacity_secs}s..." >&2
    "$oha" --no-tui -z "${capacity_secs}s" -c "$connections" --rand-regex-url "$base/api/v1/songs/($(seq -s '|' "$songs"))" \
        --output-format json -o "$dir/capacity.json" >/dev/null 2>&1
    capacity=$(jq '.summary.requestsPerSec | floor' "$dir/capacity.json")
fi

echo "baseline: uncached, $rate reads/s for ${baseline_secs}s..." >&2
reads warmup-uncached 3
start_writer
phase baseline "$baseline_secs"
phase_done baseline
stop_writer
mv "$dir/writes.log" "$dir/writes-baseline.log"
stop_app

# --- the tiered app: before, during (Redis killed, restarted empty), after ---------------
start_app cached
for i in $(seq "$songs"); do curl -sf -o /dev/null "$base/api/v1/songs/$i"; done
reads warmup-cached 3
[ "$(curl -sf "$base/api/v1/cache/health" | jq .data.redis_connected)" = true ] || {
    echo "the app is not connected to its Redis" >&2
    curl -s "$base/api/v1/cache/health" >&2
    exit 1
}
start_writer
start_poller
echo "before: $rate reads/s for ${before_secs}s, Redis up..." >&2
phase before "$before_secs"
phase_done before

echo "during: Redis killed (kill -9), restarted empty after ${outage_secs}s; ${during_secs}s in all..." >&2
phase during "$during_secs" '&'
kill -9 "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
redis_pid=''
killed_at=$(now_ms)
sleep "$outage_secs"
start_redis
restarted_at=$(now_ms)
wait "$oha_pid"
oha_pid=''
phase_done during

echo "after: ${after_secs}s, Redis back..." >&2
phase after "$after_secs"
phase_done after
stop_poller
stop_writer
stop_app

# --- report ------------------------------------------------------------------------------
# requests | non-2xx | errors | p50 | p99 | max of one oha JSON file (ms).
row() {
    jq -r '
        def ms: if . == null then "-" else (. * 1000 * 100 | round / 100 | tostring) end;
        (.statusCodeDistribution // {}) as $s | (.errorDistribution // {}) as $e |
        [ ([$s[]] | add // 0) + ([$e[]] | add // 0),
          ([$s | to_entries[] | select(.key | startswith("2") | not) | .value] | add // 0),
          ([$e[]] | add // 0),
          (.latencyPercentiles.p50 | ms), (.latencyPercentiles.p99 | ms), (.summary.slowest | ms) ]
        | @tsv' "$1"
}
# Writes between $2 and $3 (epoch ms) of writes log $1: total, non-2xx, p50 and max seconds.
write_counts() {
    awk -v from="$2" -v to="$3" '
        $1 >= from && $1 < to { n++; if ($2 !~ /^2/) bad++; t[n] = $3 }
        END {
            if (n == 0) { print "0 0 - -"; exit }
            asort(t); printf "%d %d %.1f %.1f\n", n, bad + 0, t[int((n + 1) / 2)] * 1000, t[n] * 1000
        }' "$1"
}

echo
echo "## Load with faults: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $rate reads/s, $connections connections, $songs songs"
echo
[ -z "$capacity" ] || echo "Uncached capacity (flat out, same machine, oha included): $capacity reads/s; the rate is $((rate * 100 / capacity))% of it."
echo "Redis: timeout ${redis_timeout_ms} ms, breaker cooldown ${breaker_cooldown_ms} ms; killed (kill -9) as \"during\" starts, restarted empty ${outage_secs} s later; \"during\" lasts ${during_secs} s."
echo
echo "| phase | requests | non-2xx | errors | p50 ms | p99 ms | max ms |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
phases=(baseline before during after)
declare -A label=([baseline]="baseline (uncached)" [before]=before [during]="during (Redis dead ${outage_secs} s)" [after]=after)
total_bad=0
for p in "${phases[@]}"; do
    IFS=$'\t' read -r n bad err p50 p99 max < <(row "$dir/$p.json")
    echo "| ${label[$p]} | $n | $bad | $err | $p50 | $p99 | $max |"
    case $p in
        baseline) uncached_p99=$p99 ;;
        during) during_p99=$p99 total_bad=$((total_bad + bad + err)) ;;
        *) total_bad=$((total_bad + bad + err)) ;;
    esac
done
echo
echo "Background writes (PUT /api/v1/songs/{id}, ~$writes_per_sec/s):"
echo
echo "| phase | writes | non-2xx | p50 ms | max ms |"
echo "| --- | --- | --- | --- | --- |"
for p in "${phases[@]}"; do
    if [ "$p" = baseline ]; then wlog="$dir/writes-baseline.log"; else wlog="$dir/writes.log"; fi
    read -r wn wbad wp50 wmax < <(write_counts "$wlog" "${phase_start[$p]}" "${phase_end[$p]}")
    echo "| ${label[$p]} | $wn | $wbad | $wp50 | $wmax |"
    if [ "$p" != baseline ]; then total_bad=$((total_bad + wbad)); fi
done
echo
echo "Load average (1 min) at the end of each phase: $(for p in "${phases[@]}"; do printf '%s %s; ' "$p" "${phase_load[$p]}"; done | sed 's/; $//')."
failures=$(grep -c 'Redis operation failed' "$dir/app.log" || true)
timeouts=$(grep 'Redis operation failed' "$dir/app.log" | grep -c 'no answer within' || true)
echo "App log: $failures failed Redis operations, $timeouts of them timeouts; breaker opened $(grep -c 'circuit breaker OPEN' "$dir/app.log" || true) time(s)."
echo

# Health: what the endpoint said while Redis was dead, and how long after the restart it
# reported Redis connected again.
echo "Health (GET /api/v1/cache/health every 0.5 s):"
awk -v k="$killed_at" -v r="$restarted_at" '
    { t = $1; state = substr($0, index($0, " ") + 1) }
    t >= k && t < r { sub(/,"error":.*/, "}", state); if (!(state in seen)) order[++n] = state; seen[state]++ }
    END { for (i = 1; i <= n; i++) printf "- while Redis was dead: %s (%d polls)\n", order[i], seen[order[i]] }' "$dir/health.log"
awk -v r="$restarted_at" '
    { t = $1; state = substr($0, index($0, " ") + 1) }
    t >= r && state ~ /"redis_connected":true/ && state ~ /"fallback_active":false/ {
        printf "- after the restart: Redis connected and the fallback off %.1f s later: %s\n", (t - r) / 1000, state; found = 1; exit }
    END { if (!found) print "- after the restart: never reported redis_connected" }' "$dir/health.log"
echo "- at the end: $(tail -n 1 "$dir/health.log" | cut -d' ' -f2-)"
unanswered=$(grep -c unanswered "$dir/health.log" || true)
[ "$unanswered" = 0 ] || echo "- $unanswered health polls got no answer"
echo

fail=0
if [ "$total_bad" -eq 0 ]; then
    echo "PASS: zero non-2xx and zero errors (reads and writes, before/during/after)"
else
    echo "FAIL: $total_bad non-2xx answers or errors in before/during/after (reads and writes)"
    fail=1
fi
if python3 -c "import sys; sys.exit(0 if float('$during_p99') < 2 * float('$uncached_p99') else 1)"; then
    echo "PASS: p99 during the outage $during_p99 ms < 2 × uncached p99 ($uncached_p99 ms)"
else
    echo "FAIL: p99 during the outage $during_p99 ms ≥ 2 × uncached p99 ($uncached_p99 ms)"
    fail=1
fi
exit "$fail"
