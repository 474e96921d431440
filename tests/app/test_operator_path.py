"""Operator path (issue 15, item 9): after the quick start every management command works in a
plain shell (no SECRET_KEY, no other variable): the app finds the quick start's random key in
``instance/secret_key`` and says so in the log; without that file the key is still required.

Runs the real ``flask`` CLI in a subprocess with a clean environment against a copy of the
``app`` package, so its instance folder (and SQLite database) is a temporary one."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app import config

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout-like folder: a copy of ``app`` (its instance folder is ``tmp/instance``)."""
    shutil.copytree(ROOT / "app", tmp_path / "app",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _quick_start_key(project: Path) -> str:
    """What ``scripts/serve.sh`` leaves behind: a random key in instance/secret_key."""
    key = secrets.token_hex(32)
    (project / "instance").mkdir(exist_ok=True)
    (project / "instance" / config.SECRET_KEY_FILE).write_text(key + "\n")
    return key


def _clean_env(project: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(project), "LANG": "C.UTF-8"}


def _run(project: Path, *args: str, stdin: str | None = None, env: dict | None = None,
         exe: Path = FLASK) -> subprocess.CompletedProcess:
    cmd = [str(exe), *args] if exe != FLASK else [str(exe), "--app", "app", *args]
    return subprocess.run(cmd, cwd=project, env=env or _clean_env(project), input=stdin,
                          capture_output=True, text=True, timeout=300)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _log_in_and_call(project: Path, user: str, password: str, token: str) -> dict:
    """Serve the app as the quick start does (create_app() from the environment, no
    TESTING) and log in as ``user`` with the test client; returns the status codes."""
    script = textwrap.dedent(f"""
        import json
        from app import create_app
        app = create_app()
        c = app.test_client()
        c.get("/login", base_url="https://localhost")
        with c.session_transaction() as s:
            csrf = s["csrf"]
        r = c.post("/login", base_url="https://localhost",
                   data={{"username": {user!r}, "password": {password!r}, "csrf_token": csrf}})
        ward = c.get("/", base_url="https://localhost")
        api = app.test_client().get("/api/v1/patients",
                                    headers={{"Authorization": "Bearer {token}"}})
        print(json.dumps({{"login": r.status_code, "ward": ward.status_code,
                          "api": api.status_code}}))
    """)
    out = _ok(_run(project, "-c", script, exe=Path(sys.executable)))
    return json.loads(out.strip().splitlines()[-1])


def test_serve_sh_keeps_its_key_where_the_app_looks():
    text = (ROOT / "scripts" / "serve.sh").read_text()
    assert f"instance/{config.SECRET_KEY_FILE}" in text


def test_first_login_after_the_quick_start_in_a_plain_shell(project):
    _quick_start_key(project)
    out = _ok(_run(project, "init-db"))
    assert "Initialized the database." in out
    assert "using the quick start's key file" in out  # the log says where the key came from
    assert (project / "instance" / "twin.db").exists()
    out = _ok(_run(project, "create-user", "dr-first", "--password-stdin",
                   stdin="first-login-1\n"))
    assert "User dr-first can log in." in out
    token = _ok(_run(project, "create-token", "lab", "--scopes", "read,write")
                ).strip().splitlines()[-1]
    assert token.startswith("twn_")
    assert _log_in_and_call(project, "dr-first", "first-login-1", token) == {
        "login": 302, "ward": 200, "api": 200}


@pytest.mark.slow
def test_every_token_and_user_command_in_a_plain_shell(project):
    _quick_start_key(project)
    _ok(_run(project, "init-db"))
    _ok(_run(project, "create-user", "dr-x", "--password-stdin", stdin="first-login-1\n"))
    token = _ok(_run(project, "create-token", "lab", "--expires-days", "30")
                ).strip().splitlines()[-1]
    listed = _ok(_run(project, "list-tokens"))
    assert "lab" in listed and token not in listed
    assert "Revoked 1" in _ok(_run(project, "revoke-token", "1"))
    _ok(_run(project, "create-token", "lab"))
    assert "Revoked 1" in _ok(_run(project, "revoke-token", "--name", "lab"))
    assert "deactivated" in _ok(_run(project, "deactivate-user", "dr-x"))


def test_without_the_key_file_the_key_is_still_required(project):
    result = _run(project, "init-db")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stdout + result.stderr
    assert not (project / "instance" / "twin.db").exists()


def test_the_environment_wins_over_the_key_file(tmp_path, monkeypatch):
    (tmp_path / config.SECRET_KEY_FILE).write_text("from-the-file\n")
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert config.secret_key(tmp_path) == ("from-the-environment", "environment")
    monkeypatch.delenv("SECRET_KEY")
    assert config.secret_key(tmp_path) == ("from-the-file",
                                           str(tmp_path / config.SECRET_KEY_FILE))
    (tmp_path / config.SECRET_KEY_FILE).write_text("")
    assert config.secret_key(tmp_path) == (None, None)


def test_readme_quick_start_says_how_to_create_the_first_login():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert ".venv/bin/flask --app app create-user" in quick
    assert "log in" in quick
