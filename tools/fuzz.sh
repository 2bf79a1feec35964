#!/usr/bin/env bash
# Build the libFuzzer targets with clang (ASan+UBSan) in build-fuzz and run
# each from its seed corpus for a bounded time: the short run CI makes.
#   tools/fuzz.sh [SECONDS]     (default 20 per target)
# A crash leaves its input in build-fuzz/crash-* and fails the script.
# New inputs go to build-fuzz/corpus-<target>, never into the seeds in git.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
dir=build-fuzz

if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Dbench=disabled -Dtests=false -Dfuzz=enabled \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
meson compile -C "$dir" >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in retry_after response config segment; do
  echo "== fuzz_$t (${secs}s)"
  work="$dir/corpus-$t"
  mkdir -p "$work"
  rc=0
  "$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
    -max_len=4096 -artifact_prefix="$dir/" "$work" "tests/fuzz/corpus/$t" \
    >"$dir/fuzz_$t.log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+[[:space:]]+DONE|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' \
    "$dir/fuzz_$t.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$dir/fuzz_$t.log"
    echo "fuzz_$t failed (exit $rc): the input is in $dir/, the log in $dir/fuzz_$t.log"
    exit 1
  fi
done
