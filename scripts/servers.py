"""Start the real service (gunicorn on a free loopback port) for end-to-end tests and benches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn serving ``app:create_app()`` with its own database and model bundle."""

    def __init__(self, workdir: Path, model_uri: str, workers: int = 2, threads: int = 4,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'e2e.db'}",
                    "MODEL_URI": model_uri, "SECRET_KEY": "e2e-secret-key",
                    "SESSION_COOKIE_SECURE": "0", "WEB_CONCURRENCY": str(workers),
                    "GUNICORN_THREADS": str(threads), "LOG_LEVEL": "WARNING",
                    "PYTHONPATH": str(ROOT), **(extra_env or {})}
        self.log = open(workdir / "gunicorn.log", "w")  # noqa: SIM115
        self.proc: subprocess.Popen | None = None

    def flask(self, *args: str, stdin: str | None = None) -> str:
        """Run ``flask --app app ARGS`` against the server's database; returns stdout."""
        out = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args],
                             env=self.env, cwd=ROOT, input=stdin, capture_output=True,
                             text=True, check=True, timeout=120)
        return out.stdout

    def start(self, timeout_s: float = 120) -> Server:
        self.flask("init-db")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "app/gunicorn_conf.py", "--bind",
             f"127.0.0.1:{self.port}", "--access-logfile", "/dev/null", "app:create_app()"],
            env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("gunicorn did not answer /healthz")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
