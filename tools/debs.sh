#!/usr/bin/env bash
# Build the Debian packages (libvrl0, libvrl-dev, vrld, python3-vrl), check
# them with lintian, install them on this machine, run the README's
# quickstart (examples/quickstart.c and .py) against the installed vrld,
# started by hand with the installed config (no systemd needed), then
# remove them and what they left.
#
#   tools/debs.sh [--check] [--keep DIR]
#     --check     run the unit suite in the package build (default: nocheck,
#                 tools/test.sh has run every suite already)
#     --keep DIR  copy the .deb files to DIR
#
# Needs root (sudo when not), and the segment /vrl and the packages free on
# this machine: it refuses to touch a vrld someone else installed. About 30 s
# on 2 cores (the build, lintian, the install and the quickstart).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
check=0 keep=""
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=1 ;;
    --keep) keep=$2; shift ;;
    *) echo "debs.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"     # it installs packages
export DEBIAN_FRONTEND=noninteractive
"$src/tools/deps.sh"
# one run at a time on a machine: the packages and /vrl are the machine's
exec 9> /run/lock/vrl-debs.lock
flock 9

pkgs=(libvrl0 libvrl-dev vrld python3-vrl)
for p in "${pkgs[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    echo "debs.sh: $p is installed already; remove it first" >&2; exit 2
  fi
done
if [ -e /dev/shm/vrl ]; then
  echo "debs.sh: /dev/shm/vrl exists: another vrld serves /vrl on this machine" >&2; exit 2
fi
had_user=0
getent passwd vrl >/dev/null && had_user=1

tmp=$(mktemp -d)
vrld_pid="" installed=0
cleanup() {
  set +e
  [ -n "$vrld_pid" ] && kill "$vrld_pid" 2>/dev/null && wait "$vrld_pid"
  if [ "$installed" = 1 ]; then
    echo "== apt-get purge ${pkgs[*]}"
    apt-get purge -y -qq "${pkgs[@]}" >/dev/null
    rm -f /dev/shm/vrl
    if [ "$had_user" = 0 ] && getent passwd vrl >/dev/null; then
      userdel vrl; getent group vrl >/dev/null && groupdel vrl
    fi
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- build ------------------------------------------------------------------
# from a copy of the tree (dpkg-buildpackage writes into it and its parent):
# the files git knows and the new ones it does not ignore
mkdir "$tmp/vrl"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    (cd "$src" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) |
    tar -C "$src" --null -T - -cf - | tar -C "$tmp/vrl" -xf -
else
  tar -C "$src" --exclude='./build*' --exclude=./debian/tmp -cf - . | tar -C "$tmp/vrl" -xf -
fi
opts="parallel=$(nproc)"
[ "$check" = 1 ] || opts="nocheck $opts"
echo "== dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=$opts)"
(cd "$tmp/vrl" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b) > "$tmp/build.log" 2>&1 ||
  { tail -60 "$tmp/build.log"; echo "debs.sh: the package build failed" >&2; exit 1; }
ls "$tmp"/*.deb
[ -n "$keep" ] && mkdir -p "$keep" && cp "$tmp"/*.deb "$keep"/

echo "== lintian --fail-on error"
lintian --fail-on error "$tmp"/*.changes

# ---- install ------------------------------------------------------------------
echo "== apt-get install ./{libvrl0,libvrl-dev,vrld,python3-vrl}_*.deb"
installed=1
(cd "$tmp" && apt-get install -y -qq ./libvrl0_*.deb ./libvrl-dev_*.deb ./vrld_*.deb \
  ./python3-vrl_*.deb) >/dev/null
getent passwd vrl >/dev/null || { echo "debs.sh: no vrl user after install" >&2; exit 1; }
[ -d /var/lib/vrl ] || { echo "debs.sh: no /var/lib/vrl after install" >&2; exit 1; }
for f in /usr/sbin/vrld /usr/bin/vrlctl /etc/vrl/vrl.yaml /lib/systemd/system/vrld.service \
         /usr/lib/sysusers.d/vrl.conf /usr/share/bash-completion/completions/vrlctl \
         /usr/include/vrl.h; do
  [ -e "$f" ] || { echo "debs.sh: $f not installed" >&2; exit 1; }
done
for page in vrld vrlctl vrl.yaml libvrl; do
  man -w "$page" >/dev/null || { echo "debs.sh: no man page $page" >&2; exit 1; }
done
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/vrld.service
  echo "systemd-analyze verify vrld.service: ok"
fi
dpkg-query -W -f='${Conffiles}\n' vrld | grep -q ' /etc/vrl/vrl.yaml ' ||
  { echo "debs.sh: /etc/vrl/vrl.yaml is not a conffile" >&2; exit 1; }

# ---- the quickstart against the installed vrld ----------------------------------
echo "== vrld -c /etc/vrl/vrl.yaml, as the unit runs it (user vrl), without systemd"
# --check judges the state directories for the user that runs it: run it as vrld's
setpriv --reuid=vrl --regid=vrl --init-groups /usr/sbin/vrld -c /etc/vrl/vrl.yaml --check > "$tmp/check.txt"
head -1 "$tmp/check.txt"
setpriv --reuid=vrl --regid=vrl --init-groups /usr/sbin/vrld -c /etc/vrl/vrl.yaml 2> "$tmp/vrld.log" &
vrld_pid=$!
for _ in $(seq 600); do vrlctl status >/dev/null 2>&1 && break; sleep 0.05; done
vrlctl status > "$tmp/status.txt"
head -6 "$tmp/status.txt"
[ "$(stat -c %U:%G:%a /dev/shm/vrl)" = vrl:vrl:660 ] ||
  { echo "debs.sh: /dev/shm/vrl is $(stat -c %U:%G:%a /dev/shm/vrl), expected vrl:vrl:660" >&2; exit 1; }

cd "$tmp"                 # nothing of the source tree on any path
cc "$src/examples/quickstart.c" -o quickstart $(pkg-config --cflags --libs vrl)
out=$(./quickstart)
echo "$out"
grep -q "^granted by 2 limits" <<<"$out"
grep -q "^denied by samsara.token" <<<"$out"
grep -q "^after waiting: granted" <<<"$out"

out=$(env -u PYTHONPATH /usr/bin/python3 "$src/examples/quickstart.py")
echo "$out"
grep -q "^True samsara.token 2 " <<<"$out"
grep -q "^denied by samsara.token: retry after" <<<"$out"
env -u PYTHONPATH /usr/bin/python3 - "$(dpkg-query -W -f='${Version}' python3-vrl)" <<'PY'
import sys, vrl
assert vrl.__file__.startswith("/usr/lib/python3/dist-packages/"), vrl.__file__
assert vrl.__version__ == sys.argv[1], (vrl.__version__, sys.argv[1])
print("vrl", vrl.__version__, "from", vrl.__file__)
PY

/usr/bin/python3 - <<'PY'
import urllib.request
page = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
    "http://127.0.0.1:9477/metrics", timeout=10).read().decode()
assert "vrl_daemon_up 1" in page, page[:500]
print("metrics: vrl_daemon_up 1 on 127.0.0.1:9477")
PY

kill -TERM "$vrld_pid"; wait "$vrld_pid"; vrld_pid=""
[ -f /var/lib/vrl/vrl.ckpt ] || { cat "$tmp/vrld.log"; echo "debs.sh: no checkpoint written" >&2; exit 1; }
echo "checkpoint: /var/lib/vrl/vrl.ckpt written at SIGTERM"
echo "debs.sh: packages built, lintian clean at the error level, quickstart passed"
