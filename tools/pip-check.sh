#!/usr/bin/env bash
# The Python package as pip builds it (pyproject.toml, meson-python): build
# and install it into a fresh virtualenv, then, from outside the source
# tree, import it from there, check vrl.__version__ against meson.build's
# version, and run the binding's pytest suite against that installed module
# with a real vrld.
#
#   tools/pip-check.sh [BUILD_DIR]     (default build; its vrld is used)
#
# Offline: --no-build-isolation takes meson-python from Debian's
# python3-mesonpy through --system-site-packages, and pytest likewise.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
py=/usr/bin/python3
vrld=$build/daemon/vrld/vrld
[ -x "$vrld" ] || { echo "pip-check: no vrld at $vrld: build first" >&2; exit 2; }
want=$(meson introspect --projectinfo "$build" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["version"])')

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m venv --system-site-packages "$tmp/venv"
echo "== pip install --no-build-isolation $src"
"$tmp/venv/bin/pip" install --quiet --no-build-isolation --no-index --no-cache-dir \
  --disable-pip-version-check "$src"

cd "$tmp"       # nothing of the source tree on sys.path
unset PYTHONPATH
"$tmp/venv/bin/python" - "$tmp/venv" "$want" <<'PY'
import os, sys
import vrl, vrl._vrl
venv, want = sys.argv[1:3]
for mod in (vrl, vrl._vrl):
    assert os.path.realpath(mod.__file__).startswith(os.path.realpath(venv) + "/"), \
        "%s imported from %s, not from the virtualenv" % (mod.__name__, mod.__file__)
assert vrl.__version__ == want, "vrl.__version__ %r, meson.build says %r" % (vrl.__version__, want)
print("vrl %s from %s" % (vrl.__version__, os.path.dirname(vrl.__file__)))
PY
echo "== pytest against the installed module"
VRLD=$vrld PYTHONDONTWRITEBYTECODE=1 "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$src/bindings/python/tests"
