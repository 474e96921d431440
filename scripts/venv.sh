#!/usr/bin/env bash
# Create .venv in the project root and install a requirements file (and the project,
# editable) into it, only when they changed since the last install.
# Usage: scripts/venv.sh requirements-dev.txt
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="${1:-requirements.txt}"
cd "$root"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=".venv/.installed-$(basename "$req")"
sum="$(cat "$req" requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  # the project itself, editable: `twin` and `app` import from any script or directory
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$sum" > "$stamp"
fi
