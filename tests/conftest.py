"""Fixtures every layer's tests share: the project paths, ``../shared`` and a moto server.

Each layer has its own ``conftest.py`` (``tests/app``, ``tests/twin``, ``tests/delivery``);
a plain ``pytest`` runs the fast tests, ``pytest -m ""`` (the README's test command) all.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing"}


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the project root (tests only; the service never reads it)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: tests need the shared reference material")
    return SHARED


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A real moto server (S3, ECR, ECS, CloudFormation) on a free loopback port.

    ECS services become RUNNING at once, so deploy's stability waiter finishes.
    """
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        if IN_CI:
            pytest.fail("moto_server is missing (pip install -r requirements-dev.txt)")
        pytest.skip("moto_server is not installed")
    port = free_port()
    env = {**os.environ, **MOTO_CREDENTIALS, "MOTO_ECS_SERVICE_RUNNING": "1"}
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
