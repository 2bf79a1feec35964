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
#   the tolerant upstream (one request of slack per rate), through vrl
#   waiting, adaptive and not: what adaptation costs where it is not needed.
#
# Then a text plot of the effective rate (the verdict's pace, worker 0) over
# the strict waiting adaptive run. A benchmark, not a test: the figures are
# this machine's, and a loaded machine shows more jitter.
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

config() {  # config ADAPTIVE: vrl's config, the published figures exactly
  cat <<EOF
adaptive: $1
segment: {name: $seg, keys: 1000}
limits:
  - {name: samsara.token, match: {api: samsara}, per: [token], rate: 150/s, burst: 1}
  - {name: samsara.org, match: {api: samsara}, per: [org], rate: 200/s, burst: 1}
EOF
}

run() {  # run NAME UPSTREAM(strict|tolerant) MODE(vrl|pacer) [ACQUIRE ADAPTIVE]
  local name=$1 upstream=$2 mode=$3 acquire=${4:-wait} adaptive=${5:-false} port
  local flags=() log=()
  [ "$upstream" = strict ] && flags=(--strict)
  rm -f "$tmp/port"
  "$py" "$here/sim.py" --port-file "$tmp/port" "${flags[@]}" &
  sim=$!
  wait_for "the upstream's port" test -s "$tmp/port"
  port=$(cat "$tmp/port")
  if [ "$mode" = vrl ]; then
    config "$adaptive" > "$tmp/vrl.yaml"
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
  run "strict-$acq-adaptive" strict vrl "$acq" true
  run "strict-$acq-fixed" strict vrl "$acq" false
done
run strict-pacer strict pacer
run tolerant-wait-adaptive tolerant vrl wait true
run tolerant-wait-fixed tolerant vrl wait false
run tolerant-pacer tolerant pacer

"$py" - "$tmp" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
tmp, cores, load = sys.argv[1], sys.argv[2], sys.argv[3]
runs = [l.split() for l in open(f"{tmp}/runs")]
first = json.load(open(f"{tmp}/{runs[0][0]}.json"))
print(f"Samsara, {first['workers']} workers, {first['seconds']:g} s a run, limits at the "
      f"published figures; {cores} cores, load average {load}\n")
print(f"{'run':26} {'sent':>6} {'2xx':>6} {'429':>6} {'429 share':>10} {'of admitted':>12}")
for name, upstream in runs:
    t = json.load(open(f"{tmp}/{name}.json"))["providers"]["samsara"]
    share = t["429"] / t["sent"] if t["sent"] else 0.0
    print(f"{name:26} {t['sent']:6} {t['ok']:6} {t['429']:6} {share:10.2%} {t['used']:12.1%}")
print("\n(of admitted: 2xx over the 200/s the organisation admits over the run;"
      " the strict proxy's 5 ms spacing admits exactly that)")

# the pace of worker 0 over the strict waiting adaptive run, in 0.25 s bins
try:
    pts = [tuple(map(float, l.split())) for l in open(f"{tmp}/strict-wait-adaptive.pace")]
except OSError:
    pts = []
if pts:
    width, rows = 40, []
    end = max(t for t, _ in pts)
    b = 0.0
    while b <= end:
        xs = [p for t, p in pts if b <= t < b + 0.25]
        if xs:
            lo, mean = min(xs), sum(xs) / len(xs)
            rows.append((b, lo, mean))
        b += 0.25
    print("\neffective rate over the strict waiting adaptive run (worker 0's verdicts:"
          " the slowest adaptive key's rate as a share of its figure, mean in each"
          " quarter second, | = the figure; lowest in brackets)")
    for b, lo, mean in rows:
        bar = "#" * round(mean * width)
        print(f"{b:5.2f}s {bar:{width}}| {mean:6.1%} ({lo:6.1%})")
PY
