#!/usr/bin/env bash
# The main job end to end: local upstreams that enforce the four providers'
# published limits, and a pool of worker processes calling them, first
# through vrl (vrld on examples/upstream/demo.yaml), then each worker
# limiting itself. Prints both reports: requests, 429s and the share of
# each allowance used, figures of this machine (demo.yaml's margins leave
# room for about 15 ms of jitter between a grant and its request's arrival,
# so a loaded machine sees some 429s and uses less).
# With --check, exits 1 unless what holds on any machine, however loaded,
# held: through vrl, no upstream was sent more than it allows over the run
# (vrl never over-grants, end to end), and every provider answered.
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

wait_for() {  # wait_for WHAT COMMAND...: until COMMAND succeeds; a minute at most
  local what=$1 deadline=$((SECONDS + 60)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "demo.sh: no $what after 60 s" >&2; exit 1; }
    sleep 0.05
  done
}

run() {  # run MODE: one pool run against fresh upstreams
  local mode=$1 port
  rm -f "$tmp/port"
  "$py" "$here/sim.py" --port-file "$tmp/port" --evenergy-limit 100 --evenergy-window 2 \
    --carsxe-limit 2000 --smartcar-vehicle 1000 &
  sim=$!
  wait_for "the upstreams' port" test -s "$tmp/port"
  port=$(cat "$tmp/port")
  if [ "$mode" = vrl ]; then
    sed "s|name: /vrl-demo|name: /vrl-demo-$$|" "$here/demo.yaml" > "$tmp/vrl.yaml"
    "$build/daemon/vrld" -c "$tmp/vrl.yaml" 2> "$tmp/vrld.log" &
    vrld=$!
    wait_for "vrld serving" grep -qs 'msg="serving"' "$tmp/vrld.log"
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
    # what vrl let through: requests, or units for CarsXE (a batch each)
    through = t["sent"] * (vrl["carsxe_batch"] if prov == "carsxe" else 1)
    if through > t["allowed"]:
        bad.append(f"{prov}: {through} sent through vrl, over the {t['allowed']:g} allowed")
    if t["ok"] == 0:
        bad.append(f"{prov}: no answer through vrl")
print()
n429 = sum(t["429"] for t in vrl["providers"].values())
used = min(t["used"] for t in vrl["providers"].values())
print(f"through vrl: {n429} 429s, at least {used:.1%} of every allowance used, "
      "nothing sent past an allowance" if not bad else "")
if bad:
    print("FAILED:\n  " + "\n  ".join(bad))
    sys.exit(1 if check else 0)
PY
}

run vrl
run alone
report
