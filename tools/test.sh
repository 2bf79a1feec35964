#!/usr/bin/env bash
# Set up and run every test suite: a normal build, then ASan+UBSan and TSan
# builds, each with all suites (unit, multiproc, daemon, ctl, abi, crash,
# fault, seeds, global, python, e2e, install; tests/meson.build says what
# each needs), the fuzz targets briefly, then the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh

run() {  # run DIR SETUP [meson options...]
  local dir=$1 setup=$2; shift 2
  [ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbench=disabled "$@" >/dev/null
  meson compile -C "$dir" >/dev/null
  echo "== $dir"
  meson test -C "$dir" --print-errorlogs ${setup:+--setup "$setup"}
}

run build ""
run build-asan asan -Db_sanitize=address,undefined -Db_lundef=false
CC=clang run build-tsan tsan -Db_sanitize=thread -Db_lundef=false
tools/fuzz.sh
# the Debian packages: built, installed, the quickstart run against the
# installed vrld, removed (VRL_SKIP_DEBS=1 skips it on a shared machine)
[ "${VRL_SKIP_DEBS:-0}" = 1 ] || tools/debs.sh
