#!/usr/bin/env bash
# The README's example against a real vrld: start vrld on a private segment
# with the samsara preset, run examples/quickstart, check what it printed,
# and that SIGTERM leaves the segment for a restart to adopt. Every wait is
# for an event (a line in vrld's log), bounded only to fail on a hang.
set -euo pipefail
vrld=$1 quickstart=$2
seg="/vrl-test-example-$$"
dir=$(mktemp -d)
conf="$dir/vrl.yaml" log="$dir/vrld.log"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir" "/dev/shm${seg}"' EXIT

# wait_log N: until vrld's log has N "serving" lines (60 s at most)
wait_log() {
  local deadline=$((SECONDS + 60)) n
  while n=$(grep -c 'msg="serving"' "$log" 2>/dev/null || true); [ "${n:-0}" -lt "$1" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "vrld exited:"; cat "$log"; return 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "vrld did not serve in 60 s"; return 1; }
    sleep 0.05
  done
}

printf 'presets: [samsara]\nsegment: {name: %s, keys: 1000}\n' "$seg" > "$conf"
"$vrld" -c "$conf" 2>>"$log" &
pid=$!
wait_log 1
out=$("$quickstart" "$seg")
echo "$out"
mapfile -t lines <<<"$out"
[ "${#lines[@]}" -eq 4 ]
grep -q "^granted by 2 limits" <<<"${lines[0]}"
# the next two come within one interval of samsara.token (150/s): denied;
# a machine that stalls longer between them may grant them, rightly
for l in "${lines[1]}" "${lines[2]}"; do
  grep -Eq "^(denied by samsara.token|granted by 2 limits)" <<<"$l"
done
grep -q "^after waiting: granted" <<<"${lines[3]}"
kill -TERM "$pid"; wait "$pid"; pid=""
[ -e "/dev/shm${seg}" ]                 # the segment outlives vrld
"$vrld" -c "$conf" 2>>"$log" &
pid=$!
wait_log 2
grep 'msg="serving"' "$log" | tail -1 | grep -q "adopted=1"
kill -TERM "$pid"; wait "$pid"; pid=""
echo "1 passed, 0 failed"
