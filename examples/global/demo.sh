#!/usr/bin/env bash
# Three hosts on one machine, one global limit: three vrld (hosts a, b and
# c, each with its own config and segment) and one redis-server on a Unix
# socket, all started here; a pool of worker processes per host asks for
# one global rate limit. Prints a report (figures of this machine, as
# measured): the share of the global limit used while the load is spread
# evenly and after all of it moves from host a to host c, per lease term;
# Redis's calls per second per host beside the requests each host served;
# what an acquire costs on a global key and on a host key. Exits 1 only if
# an interval of the merged grants went over the limit, or the hosts did
# not start; everything is stopped and removed when it ends.
#
#   examples/global/demo.sh [BUILD_DIR] [--seconds S] [--lease MS] [--rate N]
#                           [--burst B] [--wide-burst B] [--workers W]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then build=$1; shift; fi
cd "$root"
if ! command -v redis-server >/dev/null; then
  tools/deps.sh
fi
[ -f "$build/build.ninja" ] || meson setup "$build" -Dbench=disabled >/dev/null
meson compile -C "$build" tests/global_demo daemon/vrld/vrld >/dev/null
exec "$build/tests/global_demo" "$build/daemon/vrld/vrld" "$@"
