"""The README's Quick start, .ci/run and the scripts must not drift apart."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import twin
from tests.conftest import ROOT


def quick_start_commands() -> list[str]:
    """The command lines of the one fenced block under '## Quick start'."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^#+ *Quick start\s*$(.*?)^#+ ", text, re.M | re.S)
    assert section, "README has no Quick start section"
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", section.group(1), re.M | re.S)
    assert len(blocks) == 1, "Quick start must hold exactly one code block"
    return [line.strip() for line in blocks[0].splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands():
    assert len(quick_start_commands()) == 2


def test_ci_runs_the_readme_test_command():
    test_line = quick_start_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()]
    assert test_line in ci_lines, f".ci/run does not run the README test command {test_line!r}"


def test_quick_start_scripts_exist():
    for line in quick_start_commands():
        script = line.split()[-1]
        assert (ROOT / script).is_file(), script


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def default_bundle(tmp_path_factory) -> str:
    """The default bundle as the run command builds it when missing (scripts/ensure_model.py)."""
    uri = str(tmp_path_factory.mktemp("quickstart") / "model")
    env = dict(os.environ, MODEL_URI=uri)
    out = subprocess.run([sys.executable, "scripts/ensure_model.py"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=2000)
    assert out.returncode == 0, out.stdout + out.stderr
    return uri


# building the default bundle takes about a minute on 2 idle cores, far longer on a busy machine
@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_missing_default_bundle_is_built_and_loads(default_bundle):
    forecaster = twin.load_forecaster(default_bundle)
    assert forecaster.default_engine in forecaster.engines
    assert forecaster.version


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_run_command_serves_healthz_and_is_ready(tmp_path, default_bundle):
    """The README's first command, as written, brings up gunicorn: /healthz, then /readyz 200."""
    port = _free_port()
    env = dict(os.environ, BIND=f"127.0.0.1:{port}", SECRET_KEY="readme-test",
               DATABASE_URL=f"sqlite:///{tmp_path / 'q.db'}", MODEL_URI=default_bundle)
    proc = subprocess.Popen(
        quick_start_commands()[0], shell=True, cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                body = _get(f"{base}/healthz")[1]
                break
            except OSError:
                time.sleep(0.5)
        if body is None:
            output = proc.stdout.read().decode() if proc.poll() is not None else "timed out"
            raise AssertionError(f"/healthz never answered: {output}")
        assert json.loads(body) == {"status": "ok"}
        status, ready = _get(f"{base}/readyz")
        assert status == 200, ready
        assert json.loads(ready)["status"] == "ok"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
