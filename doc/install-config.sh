#!/bin/sh
# meson install script: install-config.sh FILE DIR
# Install FILE into $DESTDIR/DIR with mode 0644, unless a file of that name
# is already there (an operator's config is never overwritten).
set -eu
src=$1 dir=${DESTDIR:-}$2
dst=$dir/$(basename "$src")
case $src in /*) ;; *) src=$MESON_SOURCE_ROOT/$src ;; esac
if [ -e "$dst" ]; then
  echo "Keeping $dst (already there; the example is $src)"
  exit 0
fi
install -d -m 0755 "$dir"
install -m 0644 "$src" "$dst"
echo "Installing $src to $dir"
