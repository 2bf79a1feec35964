#!/usr/bin/env bash
# Adaptive pacing, measured: a pool of worker processes (10 by default) calls
# Samsara's local upstream, limits configured at exactly the published
# figures (150/s per token, 200/s per organisation, burst 1), and reports for
# each run the 429s, the share of requests that drew one, and the share of
# what the upstream admits that the pool got. The runs, side by side:
#
#   strict upstream (sim.py --strict: zero-burst leaky buckets on a ms clock,
#   bare 429s), through vrl, each way of acquiring (now: acquire and sleep on
#   retry-after; wait: acquire_wait; resolved: a resolved request), with
#   adaptive: true and without; then a per-process pacer (each worker at its
#   share of 200/s, no vrl);
#   the tolerant upstream (sliding one-second windows of 150 and 200),
#   through vrl each way, adaptive and not: what adaptation costs where it
#   is not needed; then the pacer.
#
# First, what the machine lets the pool offer, so that a reader sees whether
# the figures below are vrl's or the machine's: an upstream that refuses
# nothing (sim.py with figures far above), through vrl with limits far above
# too (the pool's capacity, requests per second, each way of acquiring), and
# with the published figures (what vrl itself grants this pool when no 429
# ever comes back: its ceiling, a share of the 200/s the organisation
# admits). Each run prints the load average at its start.
#
# Then a text plot of one run over time (the strict waiting adaptive one):
# the pool's 2xx per second against the 200/s the strict upstream admits,
# and the effective rate of worker 0's verdicts (the pace). A benchmark, not
# a test: the figures are this machine's, and a loaded machine shows more
# jitter.
#
#   measure.sh BUILD_DIR [--seconds S] [--workers N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd); shift
seconds=8 workers=10
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift ;;
    --workers) workers=$2; shift ;;
    *) echo "measure.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
py=/usr/bin/python3
tmp=$(mktemp -d)
seg="/vrl-measure-$$"
sim="" vrld=""
cleanup() {
  [ -n "$vrld" ] && kill "$vrld" 2>/dev/null && wait "$vrld" 2>/dev/null
  [ -n "$sim" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
  rm -rf "$tmp"
  rm -f "/dev/shm$seg"
  true
}
trap cleanup EXIT

wait_for() {  # wait_for WHAT COMMAND...: until COMMAND succeeds; a minute at most
  local what=$1 deadline=$((SECONDS + 60)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "measure.sh: no $what after 60 s" >&2; exit 1; }
    sleep 0.05
  done
}

config() {  # config ADAPTIVE [TOKEN ORG]: vrl's config, the published figures by default
  cat <<EOF
adaptive: $1
segment: {name: $seg, keys: 1000}
limits:
  - {name: samsara.token, match: {api: samsara}, per: [token], rate: ${2:-150}/s, burst: 1}
  - {name: samsara.org, match: {api: samsara}, per: [org], rate: ${3:-200}/s, burst: 1}
EOF
}

run() {  # run NAME UPSTREAM(strict|tolerant|open) MODE(vrl|pacer) [ACQUIRE ADAPTIVE [TOKEN ORG]]
  local name=$1 upstream=$2 mode=$3 acquire=${4:-wait} adaptive=${5:-false} port
  local flags=() log=()
  [ "$upstream" = strict ] && flags=(--strict)
  [ "$upstream" = open ] && flags=(--samsara-token 1000000 --samsara-org 1000000)
  cut -d' ' -f1 /proc/loadavg > "$tmp/$name.load"
  rm -f "$tmp/port"
  "$py" "$here/sim.py" --port-file "$tmp/port" "${flags[@]}" &
  sim=$!
  wait_for "the upstream's port" test -s "$tmp/port"
  port=$(cat "$tmp/port")
  if [ "$mode" = vrl ]; then
    config "$adaptive" "${6:-}" "${7:-}" > "$tmp/vrl.yaml"
    "$build/daemon/vrld/vrld" -c "$tmp/vrl.yaml" 2> "$tmp/vrld.log" &
    vrld=$!
    wait_for "vrld serving" grep -qs 'msg="serving"' "$tmp/vrld.log"
    log=(--pace-log "$tmp/$name.pace")
  fi
  PYTHONPATH="$build/bindings/python" "$py" "$here/pool.py" --url "http://127.0.0.1:$port" \
    --mode "$mode" --acquire "$acquire" --segment "$seg" --workers "$workers" \
    --seconds "$seconds" --providers samsara "${log[@]}" > "$tmp/$name.json"
  if [ "$mode" = vrl ]; then
    kill "$vrld"; wait "$vrld" || true; vrld=""
    rm -f "/dev/shm$seg"
  fi
  kill "$sim"; wait "$sim" 2>/dev/null || true; sim=""
  echo "$name $upstream" >> "$tmp/runs"
}

for acq in now wait resolved; do
  run "capacity-$acq" open vrl "$acq" false 1000000 1000000
  run "ceiling-$acq" open vrl "$acq" false
done
for acq in now wait resolved; do
  run "strict-$acq-adaptive" strict vrl "$acq" true
  run "strict-$acq-fixed" strict vrl "$acq" false
done
run strict-pacer strict pacer
for acq in now wait resolved; do
  run "tolerant-$acq-adaptive" tolerant vrl "$acq" true
  run "tolerant-$acq-fixed" tolerant vrl "$acq" false
done
run tolerant-pacer tolerant pacer

"$py" - "$tmp" "$(nproc)" <<'PY'
import json, sys
tmp, cores = sys.argv[1], sys.argv[2]
runs = [l.split() for l in open(f"{tmp}/runs")]
res = {name: json.load(open(f"{tmp}/{name}.json")) for name, _ in runs}
load = {name: open(f"{tmp}/{name}.load").read().strip() for name, _ in runs}
first = res[runs[0][0]]
print(f"Samsara, {first['workers']} workers, {first['seconds']:g} s a run, limits at the "
      f"published figures (150/s a token, 200/s the organisation, burst 1); {cores} cores\n")

print("what the machine lets the pool offer (an upstream that refuses nothing):")
print(f"{'acquire':10} {'capacity':>14} {'vrl ceiling':>12} {'start-up':>9} {'load':>6}")
for acq in ("now", "wait", "resolved"):
    c, v = res.get(f"capacity-{acq}"), res.get(f"ceiling-{acq}")
    if not c or not v:
        continue
    cap = c["providers"]["samsara"]["sent"] / c["seconds"]
    ceil = v["providers"]["samsara"]["ok"] / (200.0 * v["seconds"])
    print(f"{acq:10} {cap:10.0f} r/s {ceil:12.1%} {v['startup_s']:8.2f}s "
          f"{load[f'capacity-{acq}']:>6}")
print("(capacity: requests per second with limits far above; vrl ceiling: 2xx over\n"
      " 200/s with the limits at the figures and no 429 ever: what vrl grants this\n"
      " pool, two tokens at 150/s each under the organisation's 200/s, when the\n"
      " upstream refuses nothing)\n")

print(f"{'run':26} {'sent':>6} {'2xx':>6} {'429':>6} {'429 share':>10} {'of admitted':>12}"
      f" {'of ceiling':>11} {'cuts/s':>7} {'load':>6}")
for name, upstream in runs:
    if name.startswith(("capacity-", "ceiling-")):
        continue
    t = res[name]["providers"]["samsara"]
    share = t["429"] / t["sent"] if t["sent"] else 0.0
    acq = name.split("-")[1]
    c = res.get(f"ceiling-{acq}")
    ceil = c["providers"]["samsara"]["ok"] / (200.0 * c["seconds"]) if c else 0
    of_ceil = f"{t['used'] / ceil:11.1%}" if ceil and acq != "pacer" else f"{'':11}"
    cuts = f"{t['cuts'] / res[name]['seconds']:7.2f}" if "adaptive" in name else f"{'':7}"
    print(f"{name:26} {t['sent']:6} {t['ok']:6} {t['429']:6} {share:10.2%} {t['used']:12.1%}"
          f" {of_ceil} {cuts} {load[name]:>6}")
print("\n(of admitted: 2xx over the 200/s the organisation admits over the run; the"
      "\n strict proxy's 5 ms spacing admits exactly that, its tokens 142.9/s each;"
      "\n of ceiling: of admitted over the vrl ceiling of the same way of acquiring;"
      "\n cuts/s: 429s that cut an adaptive rate, per second)")

# one run over time: 2xx per second in each bin, against the 200/s line,
# and worker 0's pace (the slowest adaptive key's rate, a share of its figure)
name = "strict-wait-adaptive"
r = res.get(name)
try:
    pts = [tuple(map(float, l.split())) for l in open(f"{tmp}/{name}.pace")]
except OSError:
    pts = []
if r:
    bins, w = r["providers"]["samsara"]["bins"], r["bin_s"]
    width, top = 50, 250.0
    line = round(200.0 / top * width)
    print(f"\n{name} over time: 2xx per second in each {w:g} s (#), the 200/s the"
          f"\nupstream admits (|), and worker 0's pace (the slowest adaptive key, a share of"
          f"\nits figure: mean in the bin)")
    for i, n in enumerate(bins):
        rate = n / w
        bar = "#" * min(width, round(rate / top * width))
        bar = (bar + " " * width)[:width]
        bar = bar[:line] + ("|" if len(bar.rstrip()) <= line else "+") + bar[line + 1:]
        xs = [p for t, p in pts if i * w <= t < (i + 1) * w]
        pace = f"{sum(xs) / len(xs):6.1%}" if xs else ""
        print(f"{i * w:5.2f}s {bar} {rate:5.0f}/s {pace}")
PY
