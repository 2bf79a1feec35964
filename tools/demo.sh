#!/usr/bin/env bash
# Set up and run vrl's main job:
#   1. local upstreams that enforce the four providers' published limits,
#      and a pool of 12 Python worker processes calling them through vrl,
#      then without it: requests sent, 429s and the share of each
#      allowance used (examples/upstream/demo.sh);
#   2. vrld on its built-in default config (every provider preset), a pool
#      of 16 C worker processes sharing those limits through it, then
#      vrlctl's view of the segment.
# Any check that fails exits non-zero; the last line says what the demo showed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
[ -f build/build.ninja ] || meson setup build -Dbench=disabled >/dev/null
meson compile -C build >/dev/null

echo "== a worker pool against local upstreams, through vrl and alone"
examples/upstream/demo.sh build
echo
echo "== vrld on its default config, and a pool of 16 C workers"

seg="/vrl-demo-$$"
conf=$(mktemp)
trap 'kill "$vrld" 2>/dev/null || true; wait "$vrld" 2>/dev/null || true; rm -f "$conf" "/dev/shm${seg}"' EXIT
printf 'presets: [default]\nsegment: {name: %s, keys: 100000}\n' "$seg" > "$conf"

build/daemon/vrld/vrld -c "$conf" &
vrld=$!
for _ in $(seq 50); do [ -e "/dev/shm${seg}" ] && break; sleep 0.1; done

build/examples/pool -s "$seg" -n 16 -d 5
echo
build/daemon/vrlctl/vrlctl -s "$seg" status
echo
echo "demo: no upstream got a request past its allowance through vrl; 16 C workers" \
  "shared vrld's default limits and vrlctl showed them (any failed check exits 1)"
