#!/usr/bin/env bash
# Coverage-guided fuzzing of querycache's hostile-input surfaces (issue 8), with cargo-fuzz
# (libFuzzer) on the stable toolchain.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  how long each target runs (default 60)
#   TARGET   classify | decode | key | pattern (default: all four, one after the other)
#
# Targets (fuzz/fuzz_targets/; all but classify call `querycache::__fuzz`, which exists only
# under `--cfg fuzzing`, the cfg cargo-fuzz builds with):
#   classify the SQL classifier (the `querycache-sql` crate, sql/): `classify`, `locks` and
#            `transaction_walk` on arbitrary text; its invariants are in the target itself
#   decode   the Redis payload decoder (src/store/codec/mod.rs) on arbitrary bytes
#   key      key building (src/key/mod.rs) on arbitrary paths and arguments (`arbitrary`)
#   pattern  pattern invalidation: the memory store's glob match against the Redis store's
#            SCAN MATCH translation (src/store/redis/remove.rs; Redis' matcher ported in
#            src/store/redis/checks.rs)
# The others' invariants are the property tests' own (src/key/checks.rs, src/store/*/checks.rs).
#
# How it runs on stable: cargo-fuzz passes rustc -Z flags (sanitizer, coverage), which
# RUSTC_BOOTSTRAP=1 lets a stable rustc accept; AddressSanitizer works (`--sanitizer none`
# is not needed). `-a` builds with debug assertions (integer overflow panics). libFuzzer
# itself is compiled from C++ by libfuzzer-sys (g++ suffices).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); this script installs nothing.
# Runs under `nice -n 19`. A crash leaves its input in fuzz/artifacts/<target>/; reproduce
# it with `RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a <target> <file>`, shrink it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz tmin -O -a <target> <file>`. The corpus grows in
# fuzz/corpus/<target>/ (ignored by git) and is reused by the next run.
set -euo pipefail

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(classify decode key pattern)
fi
case $seconds in
    '' | *[!0-9]*)
        echo "usage: $0 [SECONDS] [TARGET...]" >&2
        exit 2
        ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 1
fi

cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
flags=(-O -a)

# Build first, so that the build's time is not the fuzzing's.
for target in "${targets[@]}"; do
    nice -n 19 cargo fuzz build "${flags[@]}" "$target"
done
status=0
for target in "${targets[@]}"; do
    log=$(mktemp)
    echo "== $target: ${seconds}s"
    if nice -n 19 cargo fuzz run "${flags[@]}" "$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (input in fuzz/artifacts/$target/)"
        status=1
        grep -E "panicked at|ERROR: |SUMMARY" -A3 "$log" | head -n 20 || true
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    corpus=$(grep -Eo 'corp: [0-9]+/[0-9a-zA-Z]+' "$log" | tail -n 1 || true)
    echo "$target: ${execs:-?} executions in ${seconds}s, $cov, $corpus: $result"
    rm -f "$log"
done
exit $status
