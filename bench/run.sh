#!/bin/sh
# bench/run.sh - build, run the vrl benchmarks, print the summary table.
#
#   bench/run.sh [extra Google Benchmark options]
#
# Starts a private redis-server on a Unix socket in a temp dir for the
# Redis + Lua baseline (skipped when redis-server is not installed), and
# stops it afterwards. BUILD_DIR (default: build) picks the build folder.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vrl-bench.XXXXXX")
redis_pid=

cleanup() {
	if [ -n "$redis_pid" ]; then
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

[ -d "$build" ] || meson setup "$build" "$root"
meson compile -C "$build" >/dev/null
exe=$build/bench/bench_vrl
if [ ! -x "$exe" ]; then
	echo "bench: $exe was not built (Google Benchmark or a C++ compiler missing?)" >&2
	exit 1
fi

if command -v redis-server >/dev/null 2>&1; then
	sock=$tmp/redis.sock
	redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' \
		--appendonly no --daemonize no --dir "$tmp" --logfile "$tmp/redis.log" &
	redis_pid=$!
	i=0
	while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	if [ -S "$sock" ]; then
		export VRL_BENCH_REDIS="$sock"
	else
		echo "bench: redis-server did not start; the Redis baseline is skipped" >&2
	fi
else
	echo "bench: redis-server not found; the Redis baseline is skipped" >&2
fi

# three short repetitions: the summary takes their median
"$exe" --benchmark_min_time=0.2 --benchmark_repetitions=3 \
	--benchmark_report_aggregates_only=true --benchmark_out="$tmp/result.json" \
	--benchmark_out_format=json "$@"

py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$py" "$root/bench/summary.py" "$tmp/result.json"

# the Python binding beside python3-limits, when it was built
if [ -d "$build/bindings/python/vrl" ] && [ -x /usr/bin/python3 ]; then
	echo
	/usr/bin/python3 "$root/bench/python_bench.py" --build "$build"
fi
