#!/usr/bin/env bash
# Set up and run vrl's main job: vrld on its built-in default config (the
# four providers' published limits), a pool of 16 worker processes sharing
# those limits through it, then vrlctl's view of the segment.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
[ -f build/build.ninja ] || meson setup build -Dbench=disabled >/dev/null
meson compile -C build >/dev/null

seg="/vrl-demo-$$"
conf=$(mktemp)
trap 'kill "$vrld" 2>/dev/null || true; wait "$vrld" 2>/dev/null || true; rm -f "$conf" "/dev/shm${seg}"' EXIT
printf 'presets: [default]\nsegment: {name: %s, keys: 100000}\n' "$seg" > "$conf"

build/daemon/vrld -c "$conf" &
vrld=$!
for _ in $(seq 50); do [ -e "/dev/shm${seg}" ] && break; sleep 0.1; done

build/examples/pool -s "$seg" -n 16 -d 5
echo
build/daemon/vrlctl -s "$seg" status
