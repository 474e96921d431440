#!/usr/bin/env bash
# The whole test suite: installs the dev requirements into .venv, lints, runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k health).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/venv.sh requirements-dev.txt
.venv/bin/ruff check .
# pytest exits 5 when it collected no test: set -e makes that (and any failure) fatal.
# -m "": every test, the slow/browser/postgres/container ones too (a later -m overrides).
.venv/bin/python -m pytest -m "" "$@"
