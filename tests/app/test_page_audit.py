"""Every page read and form write is in the audit log with its patient, committed before the
response (issue 15, item 4); reads survive a worker killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app import db
from app.models import AuditEvent


def _rows(app, **where) -> list[AuditEvent]:
    with app.app_context(), db.new_session() as s:
        q = select(AuditEvent)
        for k, v in where.items():
            q = q.where(getattr(AuditEvent, k) == v)
        return list(s.scalars(q).all())


def test_pages_audit_admission_views_and_writes(app, log_in):
    client, csrf = log_in(app, "dr-audit")
    resp = client.post("/patients/new", data={"age": "70", "renal_function": "normal",
                                              "glucose": "normal", "csrf_token": csrf})
    assert resp.status_code == 302
    pid = resp.headers["Location"].rsplit("/", 1)[-1]
    (admit,) = _rows(app, patient_id=pid, method="POST")
    assert admit.action == "write" and admit.actor == "dr-audit" and admit.status == 302
    assert admit.path == "/patients/new"

    assert client.get(f"/patients/{pid}").status_code == 200
    reads = _rows(app, patient_id=pid, action="read")  # no flush: committed already
    assert [r.path for r in reads] == [f"/patients/{pid}"] and reads[0].actor == "dr-audit"

    when = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    client.post(f"/patients/{pid}/observations",
                data={"time": when, "hr_bpm": "71", "csrf_token": csrf})
    writes = _rows(app, patient_id=pid, path=f"/patients/{pid}/observations")
    assert len(writes) == 1 and writes[0].action == "write"
    assert "71" not in (writes[0].detail or "")  # no values

    client.get("/")
    assert _rows(app, path="/", action="read")
    before = len(_rows(app))
    client.get("/static/web/style.css")
    assert len(_rows(app)) == before  # assets carry no patient data


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


@pytest.mark.slow
def test_reads_survive_a_killed_worker(tmp_path, model_bundle):
    from scripts.servers import Server

    srv = Server(tmp_path, model_bundle, workers=2).start()
    try:
        token = srv.flask("create-token", "reader", "--scopes", "read,write"
                          ).strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(200):
            req = urllib.request.Request(srv.url + "/api/v1/patients", headers=headers)
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 200
        for pid in [*_children(srv.proc.pid), srv.proc.pid]:  # workers, then the master
            os.kill(pid, signal.SIGKILL)  # no shutdown, no flush
        srv.proc.wait(timeout=30)
    finally:
        srv.stop()
    from app import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": srv.env["DATABASE_URL"],
                      "MODEL_URI": model_bundle})
    reads = _rows(app, path="/api/v1/patients", action="read")
    assert len(reads) == 200


@pytest.mark.parametrize("hops, expected", [(0, "127.0.0.1"), (1, "203.0.113.7")])
def test_the_client_address_is_forwarded_only_by_a_trusted_proxy(tmp_path, hops, expected):
    from app import create_app
    from app.auth import issue_token
    from app.db import init_db

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
                      "MODEL_URI": str(tmp_path / "model"), "TRUSTED_PROXY_HOPS": hops})
    with app.app_context():
        init_db()
        token = issue_token("edge", "read")
    app.test_client().get("/api/v1/patients", headers={
        "Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.7"})
    (row,) = _rows(app, path="/api/v1/patients")
    assert row.client_addr == expected
