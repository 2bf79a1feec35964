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
  python3-yaml
)
# without their Recommends: docker-compose only checks the compose file,
# it must not bring a container engine; prometheus is there for promtool
# (the metrics lint test), not for its server
bare=(docker-compose prometheus)
missing=() missing_bare=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for p in "${bare[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_bare+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_bare[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]} ${missing_bare[*]}"
$sudo apt-get update -qq
[ ${#missing[@]} -eq 0 ] ||
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
[ ${#missing_bare[@]} -eq 0 ] ||
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing_bare[@]}" >/dev/null
