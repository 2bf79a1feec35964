#!/usr/bin/env bash
# A program built against libvrl 0.1 (old_caller, from vrl-0.1.h) runs with
# this libvrl.so against a real vrld: start vrld on a private segment with
# one rate limit that no test run can empty or refill, run it. Waits are for an event (vrld's "serving"
# line), bounded only to fail on a hang.
set -euo pipefail
vrld=$1 caller=$2
seg="/vrl-test-abi-$$"
dir=$(mktemp -d)
conf="$dir/vrl.yaml" log="$dir/vrld.log"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir" "/dev/shm${seg}"' EXIT

cat > "$conf" <<EOF2
segment: {name: $seg, keys: 1000}
limits:
  - name: abi.token
    match: {api: abi}
    per: [token]
    rate: 100/h
    burst: 100
EOF2
"$vrld" -c "$conf" 2>>"$log" &
pid=$!
deadline=$((SECONDS + 60))
until grep -q 'msg="serving"' "$log" 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || { echo "vrld exited:"; cat "$log"; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { echo "vrld did not serve in 60 s"; exit 1; }
  sleep 0.05
done
"$caller" "$seg"
kill -TERM "$pid"; wait "$pid"; pid=""
