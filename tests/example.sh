#!/usr/bin/env bash
# The README's example against a real vrld: start vrld on a private segment
# with the samsara preset, run examples/quickstart, check what it printed,
# and that SIGTERM leaves the segment for a restart to adopt.
set -euo pipefail
vrld=$1 quickstart=$2
seg="/vrl-test-example-$$"
conf=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$conf" "/dev/shm${seg}"' EXIT
printf 'presets: [samsara]\nsegment: {name: %s, keys: 1000}\n' "$seg" > "$conf"
"$vrld" -c "$conf" 2>/dev/null &
pid=$!
for _ in $(seq 100); do [ -e "/dev/shm${seg}" ] && break; sleep 0.05; done
out=$("$quickstart" "$seg")
echo "$out"
grep -q "^granted by 2 limits" <<<"$out"
grep -q "^denied by samsara.token" <<<"$out"
grep -q "^after waiting: granted" <<<"$out"
kill -TERM "$pid"; wait "$pid"
[ -e "/dev/shm${seg}" ]                 # the segment outlives vrld
"$vrld" -c "$conf" 2>&1 | head -1 | grep -q "adopted=1" &
sleep 0.5; pkill -TERM -f "vrld -c $conf" || true; wait
echo "1 passed, 0 failed"
