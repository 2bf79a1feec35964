#!/usr/bin/env bash
# Install vrl's build and test dependencies from Debian's packages.
# Runs apt-get only for what is missing; needs root (or sudo) for that.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config python3
  libyaml-dev libjson-c-dev libxxhash-dev liburcu-dev libsystemd-dev libcmocka-dev libmicrohttpd-dev
  libbenchmark-dev g++ libhiredis-dev redis-server
  clang libclang-rt-14-dev
  python3-dev python3-pytest python3-limits
  scdoc man-db bash-completion zsh
  python3-venv python3-mesonpy
  dpkg-dev debhelper dh-python lintian
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
