#!/usr/bin/env bash
# The main job end to end: local upstreams that enforce the four providers'
# published limits, and a pool of worker processes calling them, first
# through vrl (vrld on examples/upstream/demo.yaml), then each worker
# limiting itself. Prints both reports; with --check, exits 1 unless the
# pool through vrl used at least 95% of every allowance and got no more
# 429s than jitter explains: at most 0.2% of its requests (demo.yaml's
# margins leave room for about 15 ms; a starved test machine can exceed
# that). The share used depends on the machine keeping up with ~200
# requests per second in Python: with --check, a run that fails either
# check is run once more, and both reports are printed.
#
#   demo.sh BUILD_DIR [--check] [--seconds S] [--workers N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd); shift
check=0 seconds=10 workers=12
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=1 ;;
    --seconds) seconds=$2; shift ;;
    --workers) workers=$2; shift ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
py=/usr/bin/python3
tmp=$(mktemp -d)
sim="" vrld=""
cleanup() {
  [ -n "$vrld" ] && kill "$vrld" 2>/dev/null && wait "$vrld" 2>/dev/null
  [ -n "$sim" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
  rm -rf "$tmp"
  rm -f "/dev/shm/vrl-demo-$$"
  true
}
trap cleanup EXIT

run() {  # run MODE: one pool run against fresh upstreams
  local mode=$1 port
  rm -f "$tmp/port"
  "$py" "$here/sim.py" --port-file "$tmp/port" --evenergy-limit 100 --evenergy-window 2 \
    --carsxe-limit 2000 --smartcar-vehicle 1000 &
  sim=$!
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
  port=$(cat "$tmp/port")
  if [ "$mode" = vrl ]; then
    sed "s|name: /vrl-demo|name: /vrl-demo-$$|" "$here/demo.yaml" > "$tmp/vrl.yaml"
    "$build/daemon/vrld" -c "$tmp/vrl.yaml" 2> "$tmp/vrld.log" &
    vrld=$!
    for _ in $(seq 100); do [ -e "/dev/shm/vrl-demo-$$" ] && break; sleep 0.05; done
  fi
  PYTHONPATH="$build/bindings/python" "$py" "$here/pool.py" --url "http://127.0.0.1:$port" \
    --mode "$mode" --segment "/vrl-demo-$$" --workers "$workers" --seconds "$seconds" \
    --ev-limit 100 --ev-window 2 --carsxe-limit 2000 > "$tmp/$mode.json"
  if [ "$mode" = vrl ]; then
    "$build/daemon/vrlctl" -s "/vrl-demo-$$" status > "$tmp/status.txt" || true
    kill "$vrld"; wait "$vrld" || true; vrld=""
    rm -f "/dev/shm/vrl-demo-$$"
  fi
  kill "$sim"; wait "$sim" 2>/dev/null || true; sim=""
}

report() {
"$py" - "$tmp/vrl.json" "$tmp/alone.json" "$check" <<'PY'
import json, sys
vrl, alone = (json.load(open(p)) for p in sys.argv[1:3])
check = sys.argv[3] == "1"
print(f"{vrl['workers']} worker processes, {vrl['seconds']:g} s, each provider's local upstream\n")
print(f"{'provider':10} {'':6} {'sent':>6} {'2xx':>6} {'429':>6} {'allowed':>8} {'used':>7}")
bad = []
for prov in vrl["providers"]:
    for name, run in (("vrl", vrl), ("alone", alone)):
        t = run["providers"][prov]
        print(f"{prov:10} {name:6} {t['sent']:6} {t['ok']:6} {t['429']:6} "
              f"{t['allowed']:8g} {t['used']:7.1%}")
    t = vrl["providers"][prov]
    if t["429"] > 0.002 * t["sent"]:
        bad.append(f"{prov}: {t['429']} 429s through vrl, more than jitter explains")
    if t["used"] < 0.95:
        bad.append(f"{prov}: {t['used']:.1%} of the allowance used through vrl, expected >= 95%")
print()
if bad:
    print("FAILED:\n  " + "\n  ".join(bad))
    sys.exit(1 if check else 0)
n429 = sum(t["429"] for t in vrl["providers"].values())
print(f"through vrl: {n429} 429s and at least 95% of every allowance used")
PY
}

run vrl
run alone
if ! report && [ "$check" = 1 ]; then
  echo "== once more"
  run vrl
  run alone
  report
fi
