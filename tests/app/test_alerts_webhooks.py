"""Webhooks against a real local HTTP server (http.server in a thread, no mocks): signed with
HMAC-SHA256, retried with backoff after a failure, logged; the request never waits."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app, db
from app.alerts import webhooks
from app.auth import issue_token
from app.db import init_db
from app.models import WebhookDelivery

SECRET = "s3cret-for-the-webhook-tests"


class Receiver:
    """An HTTP endpoint answering the first ``fail`` requests with 500, then 200."""

    def __init__(self, fail: int = 1) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                code = 500 if len(receiver.requests) <= receiver.fail else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=1)
    yield r
    r.close()


def _make_app(tmp_path: Path, background: bool):
    app = create_app({"TESTING": True, "PREWARM_FORECASTS": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'hooks.db'}",
                      "MODEL_URI": str(tmp_path / "model"),
                      "ALERT_WEBHOOK_BACKGROUND": background,
                      "ALERT_WEBHOOK_BACKOFF_S": 0.2, "ALERT_WEBHOOK_TIMEOUT_S": 2.0})
    with app.app_context():
        init_db()
        token = issue_token("nurse", "read,write")
    return app, {"Authorization": f"Bearer {token}"}


def _low_sbp(client, headers) -> str:
    pid = client.post("/api/v1/patients", json={"age": 70}, headers=headers).get_json()["id"]
    t = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    resp = client.post(f"/api/v1/patients/{pid}/observations", json={"observations": [
        {"time": t, "code": "sbp_mmhg", "value": 82, "unit": "mm[Hg]"}]}, headers=headers)
    assert resp.status_code == 201
    return pid


def _verify(headers: dict[str, str], body: bytes) -> dict:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Signature"], expected)
    payload = json.loads(body)
    assert headers["X-Alert-Event"] == payload["type"]
    assert headers["X-Delivery-Id"] == payload["id"]
    return payload


def test_signed_delivery_is_retried_with_backoff_and_logged(tmp_path, receiver):
    app, headers = _make_app(tmp_path, background=False)
    with app.app_context():
        webhooks.add_subscription(receiver.url, SECRET, "alert.raised")
    _low_sbp(app.test_client(), headers)
    assert receiver.requests == []  # queued by the write, not sent by it
    with app.app_context():
        now = datetime.now(UTC)
        assert webhooks.deliver_due(now)["retry"] >= 1  # the server fails the first one
        with db.new_session() as s:
            first = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).first()
            assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
            assert first.next_attempt_at == now + timedelta(seconds=0.2)
        assert sum(webhooks.deliver_due(now).values()) == 0  # not due yet
        counts = webhooks.deliver_due(now + timedelta(seconds=1))
        assert counts["delivered"] >= 1
        with db.new_session() as s:
            rows = s.scalars(select(WebhookDelivery)).all()
            assert {r.status for r in rows} == {"delivered"}
            assert first.id in {r.id for r in rows if r.attempts == 2}
    payloads = [_verify(h, b) for h, b in receiver.requests]
    assert {p["type"] for p in payloads} == {"alert.raised"}
    assert {p["alert"]["rule"] for p in payloads} >= {"sbp_low"}
    retried = [p for p in payloads if p["id"] == payloads[0]["id"]]
    assert len(retried) == 2  # the same delivery (same id, same body) sent twice


def test_background_delivery_does_not_block_the_request(tmp_path, receiver):
    app, headers = _make_app(tmp_path, background=True)
    with app.app_context():
        webhooks.add_subscription(receiver.url, SECRET, "*")
    client = app.test_client()
    t0 = time.perf_counter()
    _low_sbp(client, headers)
    assert time.perf_counter() - t0 < 2.0
    deadline = time.monotonic() + 10
    wanted = 3  # sbp_low and news2_single_parameter_3 raised, one of them retried once
    while len(receiver.requests) < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(receiver.requests) >= wanted
    alerts = client.get("/api/v1/alerts", headers=headers).get_json()["alerts"]
    sbp = next(a for a in alerts if a["rule"] == "sbp_low")
    client.post(f"/api/v1/alerts/{sbp['id']}/acknowledge", json={"note": "seen"},
                headers=headers)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
            json.loads(b)["type"] == "alert.acknowledged" for _h, b in receiver.requests):
        time.sleep(0.05)
    acked = [_verify(h, b) for h, b in receiver.requests
             if json.loads(b)["type"] == "alert.acknowledged"]
    assert acked and acked[0]["alert"]["acknowledged_by"] == "nurse"


def test_unreachable_endpoint_fails_after_max_attempts(tmp_path):
    app, headers = _make_app(tmp_path, background=False)
    app.config["ALERT_WEBHOOK_MAX_ATTEMPTS"] = 2
    with app.app_context():
        webhooks.add_subscription("http://127.0.0.1:9/nothing-listens", SECRET,
                                  "alert.raised")
    _low_sbp(app.test_client(), headers)
    with app.app_context():
        now = datetime.now(UTC)
        webhooks.deliver_due(now)
        counts = webhooks.deliver_due(now + timedelta(hours=1))
        assert counts["failed"] >= 1
        with db.new_session() as s:
            row = s.scalars(select(WebhookDelivery)).first()
            assert row.status == "failed" and row.attempts == 2 and row.last_error


def test_cli_adds_a_webhook_and_delivers(tmp_path, receiver):
    app, headers = _make_app(tmp_path, background=False)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["alerts", "add-webhook", receiver.url, "--secret-stdin",
                                 "--events", "alert.raised"], input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["alerts", "add-webhook", "ftp://x", "--events", "nope"])
    assert bad.exit_code != 0
    _low_sbp(app.test_client(), headers)
    result = runner.invoke(args=["alerts", "deliver"])
    assert result.exit_code == 0 and "retry" in result.output
    assert receiver.requests and _verify(*receiver.requests[0])
    listing = runner.invoke(args=["alerts", "webhooks"])
    assert receiver.url in listing.output and "pending" in listing.output
    log = runner.invoke(args=["alerts", "deliveries"])
    assert "alert.raised" in log.output and "last 500" in log.output
    assert runner.invoke(args=["alerts", "remove-webhook", "1"]).exit_code == 0
    assert runner.invoke(args=["alerts", "remove-webhook", "99"]).exit_code != 0
    assert "inactive" in runner.invoke(args=["alerts", "webhooks"]).output


def test_deliveries_left_pending_resume_on_the_first_request_after_a_restart(tmp_path):
    receiver = Receiver(fail=0)
    try:
        app, headers = _make_app(tmp_path, background=False)
        with app.app_context():
            webhooks.add_subscription(receiver.url, SECRET, "alert.raised")
        _low_sbp(app.test_client(), headers)  # queued; this "process" never sends it
        assert receiver.requests == []
        restarted, headers = _make_app(tmp_path, background=True)  # same database
        restarted.test_client().get("/healthz")  # the health checks never look
        time.sleep(0.3)
        assert receiver.requests == []
        restarted.test_client().get("/api/v1/alerts", headers=headers)
        deadline = time.monotonic() + 10
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {json.loads(b)["alert"]["rule"] for _h, b in receiver.requests} >= {"sbp_low"}
    finally:
        receiver.close()
