"""Thin wrapper: `.venv/bin/python scripts/simulate.py ARGS` = `python -m twin simulate ARGS`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twin.cli import main

if __name__ == "__main__":
    sys.exit(main())
