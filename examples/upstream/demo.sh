#!/usr/bin/env bash
# The main job end to end: local upstreams that enforce the four providers'
# published limits, and a pool of worker processes calling them, first
# through vrl (vrld on examples/upstream/demo.yaml), then each worker
# limiting itself. Prints both reports: requests, 429s and the share of
# each allowance used, figures of this machine (demo.yaml's margins leave
# room for about 15 ms of jitter between a grant and its request's arrival,
# so a loaded machine sees some 429s and uses less).
# Exits 1 unless what holds on any machine, however loaded, held: through
# vrl, no upstream was sent more than it allows over the run (vrl never
# over-grants, end to end), and every provider called answered. Its last
# line says in one sentence what the run showed, or what failed. (--check
# is accepted and changes nothing: a failed check always exits 1.)
#
# With --strict, the upstreams sit behind a strict proxy (sim.py --strict:
# zero-burst leaky buckets on a millisecond clock, 429s that say nothing)
# and vrl runs demo-strict.yaml, the published figures with no margin; the
# pool (10 workers on Samsara unless told otherwise) runs through vrl once
# per way of acquiring (acquire now and sleep on retry-after, acquire_wait,
# a resolved request), then alone; the report adds which rate the proxy's
# 429s came from.
#
#   demo.sh BUILD_DIR [--check] [--strict] [--seconds S] [--workers N]
#                     [--providers samsara,evenergy,smartcar,carsxe]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd); shift
check=0 strict=0 seconds=10 workers="" providers=""
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=1 ;;
    --strict) strict=1 ;;
    --seconds) seconds=$2; shift ;;
    --workers) workers=$2; shift ;;
    --providers) providers=$2; shift ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$strict" = 1 ]; then
  workers=${workers:-10} providers=${providers:-samsara} config=demo-strict.yaml
  simflags=(--strict)
else
  workers=${workers:-12} providers=${providers:-samsara,evenergy,smartcar,carsxe}
  config=demo.yaml simflags=()
fi
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

run() {  # run MODE [ACQUIRE]: one pool run against fresh upstreams, into $tmp/NAME.json
  local mode=$1 acquire=${2:-wait} port name=$1
  [ $# -gt 1 ] && name="$1-$2"
  rm -f "$tmp/port"
  "$py" "$here/sim.py" --port-file "$tmp/port" --evenergy-limit 100 --evenergy-window 2 \
    --carsxe-limit 2000 --smartcar-vehicle 1000 "${simflags[@]}" &
  sim=$!
  wait_for "the upstreams' port" test -s "$tmp/port"
  port=$(cat "$tmp/port")
  if [ "$mode" = vrl ]; then
    sed "s|name: /vrl-demo|name: /vrl-demo-$$|" "$here/$config" > "$tmp/vrl.yaml"
    "$build/daemon/vrld/vrld" -c "$tmp/vrl.yaml" 2> "$tmp/vrld.log" &
    vrld=$!
    wait_for "vrld serving" grep -qs 'msg="serving"' "$tmp/vrld.log"
  fi
  PYTHONPATH="$build/bindings/python" "$py" "$here/pool.py" --url "http://127.0.0.1:$port" \
    --mode "$mode" --acquire "$acquire" --segment "/vrl-demo-$$" --workers "$workers" \
    --seconds "$seconds" --providers "$providers" \
    --ev-limit 100 --ev-window 2 --carsxe-limit 2000 > "$tmp/$name.json"
  "$py" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
    "http://127.0.0.1:$port/stats" > "$tmp/$name.stats.json" || echo '{}' > "$tmp/$name.stats.json"
  if [ "$mode" = vrl ]; then
    "$build/daemon/vrlctl/vrlctl" -s "/vrl-demo-$$" status > "$tmp/status.txt" || true
    kill "$vrld"; wait "$vrld" || true; vrld=""
    rm -f "/dev/shm/vrl-demo-$$"
  fi
  kill "$sim"; wait "$sim" 2>/dev/null || true; sim=""
}

report() {  # report RUN...: the runs' figures side by side; the first is through vrl
"$py" - "$tmp" "$check" "$strict" "$@" <<'PY'
import json, sys
tmp, check, strict, names = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4:]
runs = [(n, json.load(open(f"{tmp}/{n}.json"))) for n in names]
stats = {n: json.load(open(f"{tmp}/{n}.stats.json")) for n in names}
first = runs[0][1]
called = first["called"]
label = {"vrl": "vrl", "vrl-now": "vrl now", "vrl-wait": "vrl wait",
         "vrl-resolved": "vrl resolved", "alone": "alone"}
what = "a strict proxy (zero-burst leaky buckets, ms clock, bare 429s) in front of " \
    if strict else ""
print(f"{first['workers']} worker processes, {first['seconds']:g} s, {what}"
      f"each provider's local upstream\n")
print(f"{'provider':10} {'':13} {'sent':>6} {'2xx':>6} {'429':>6} {'allowed':>8} {'used':>7}")
bad = []
for prov in called:
    for name, run in runs:
        t = run["providers"][prov]
        print(f"{prov:10} {label.get(name, name):13} {t['sent']:6} {t['ok']:6} {t['429']:6} "
              f"{t['allowed']:8g} {t['used']:7.1%}")
    for name, run in runs:
        if run["mode"] != "vrl":
            continue
        t = run["providers"][prov]
        # what vrl let through: requests, or units for CarsXE (a batch each)
        through = t["sent"] * (run["carsxe_batch"] if prov == "carsxe" else 1)
        if through > t["allowed"]:
            bad.append(f"{prov} ({label.get(name, name)}): {through} sent through vrl, "
                       f"over the {t['allowed']:g} allowed")
        if t["ok"] == 0:
            bad.append(f"{prov} ({label.get(name, name)}): no answer through vrl")
if strict:
    print("\nthe proxy's 429s, by the rate that refused them (it tells the client none of this):")
    for name, _ in runs:
        by = {k.split(" 429 by ", 1)[1]: n for k, n in stats[name].items() if " 429 by " in k}
        print(f"  {label.get(name, name):13} " +
              (", ".join(f"{k} {n}" for k, n in sorted(by.items())) or "none"))
print()
for name, run in runs:
    if run["mode"] != "vrl":
        continue
    ps = [run["providers"][p] for p in called]
    print(f"through {label.get(name, name)}: {sum(t['429'] for t in ps)} 429s in "
          f"{sum(t['sent'] for t in ps)} requests, at least "
          f"{min(t['used'] for t in ps):.1%} of every allowance used")
if bad:
    print("FAILED:\n  " + "\n  ".join(bad))
    print(f"demo FAILED: {len(bad)} check(s) above did not hold")
    sys.exit(1)
alone = [run for _, run in runs if run["mode"] != "vrl"]
alone_429 = sum(run["providers"][p]["429"] for run in alone for p in called)
print(f"shown: {first['workers']} workers through vrl sent nothing past any of "
      f"{len(called)} providers' allowances" +
      (f"; alone they drew {alone_429} 429s" if alone else ""))
PY
}

if [ "$strict" = 1 ]; then
  run vrl now
  run vrl wait
  run vrl resolved
  run alone
  report vrl-now vrl-wait vrl-resolved alone
else
  run vrl
  run alone
  report vrl alone
fi
