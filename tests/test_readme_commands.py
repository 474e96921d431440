"""The README's Quick start, .ci/run and the scripts must not drift apart."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request

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


def test_run_command_serves_healthz(tmp_path):
    """The README's first command, as written, brings up gunicorn answering /healthz."""
    port = _free_port()
    env = dict(os.environ, BIND=f"127.0.0.1:{port}", SECRET_KEY="readme-test",
               DATABASE_URL=f"sqlite:///{tmp_path / 'q.db'}", MODEL_URI=str(tmp_path / "model"))
    proc = subprocess.Popen(
        quick_start_commands()[0], shell=True, cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        if body is None:
            output = proc.stdout.read().decode() if proc.poll() is not None else "timed out"
            raise AssertionError(f"/healthz never answered: {output}")
        assert '"status":"ok"' in body.replace(" ", "")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
