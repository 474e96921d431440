"""`pip install .` without extras gives a working twin that needs neither Flask nor SQLAlchemy.

The fresh virtualenv gets the project itself from `pip install --no-deps .` (a real build
and install of this checkout); its core dependencies (torch, numpy, pandas and theirs) are
made visible through a directory of links to the test environment's copies, because the
registry download of torch would take minutes. Flask and SQLAlchemy are not linked, so an
import of either in `twin` fails the test.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CORE = ("torch", "numpy", "pandas")
SNIPPET = """
import json, sys
import twin
from twin import Regimen, Scenario, simulate
res = simulate([Scenario(age_years=50, regimen=Regimen(dose_mg=10))], [0.0, 12.0, 24.0])
sbp = res.endpoints["sbp_mmhg"].detach().numpy().ravel().tolist()
print(json.dumps({"file": twin.__file__, "sbp": sbp,
                  "web": sorted(m for m in ("flask", "sqlalchemy") if m in sys.modules)}))
"""


def _closure(names: tuple[str, ...]) -> set[str]:
    """Distribution names of ``names`` and everything they require (markers ignored)."""
    todo, seen = list(names), set()
    while todo:
        name = re.split(r"[ ;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional or platform-specific requirement
        seen.add(name)
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return seen


def _link_site(target: Path) -> None:
    """Links to the top-level modules of the core dependency closure in ``target``."""
    target.mkdir()
    for name in _closure(CORE):
        for f in md.distribution(name).files or []:
            top = f.parts[0]
            src = Path(f.locate()).parents[len(f.parts) - 1] / top
            if src.exists() and not (target / top).exists() and top != "..":
                (target / top).symlink_to(src)


def test_twin_installs_alone_and_simulates(tmp_path: Path) -> None:
    requires = md.requires("ras-twin") or []
    core = [r for r in requires if "extra ==" not in r]
    assert not [r for r in core if re.match(r"(?i)(flask|sqlalchemy|gunicorn|boto3)", r)], core
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    src = tmp_path / "src"  # a copy: the build leaves build/ beside the sources
    src.mkdir()
    for part in ("pyproject.toml", "README.md", "twin", "app"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy2
        copy(ROOT / part, src / part)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(src)],
                   check=True, timeout=600, cwd=tmp_path)
    site = tmp_path / "core-deps"
    _link_site(site)
    assert not (site / "flask").exists() and not (site / "sqlalchemy").exists()
    out = subprocess.run([str(py), "-c", SNIPPET], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env={"PYTHONPATH": str(site),
                                                         "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert str(venv) in result["file"]  # the installed copy, not this checkout
    assert result["web"] == []
    assert len(result["sbp"]) == 3 and all(60 < v < 250 for v in result["sbp"])
