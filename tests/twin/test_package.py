"""The twin package stands on its own: importing it pulls in no web or storage stack."""

import subprocess
import sys

from tests.conftest import ROOT


def test_twin_imports_without_flask():
    code = (
        "import sys, twin\n"
        "bad = [m for m in ('flask', 'app', 'sqlalchemy', 'flask_cors') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print(twin.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_twin_sources_never_import_app():
    offenders = []
    for path in (ROOT / "twin").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import flask", "from flask", "from app", "import app",
                                    "import sqlalchemy", "from sqlalchemy")):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert not offenders, offenders
