"""``Idempotency-Key`` (issue 15, item 6): a retried post stores the readings once and gets
the first answer again; the same key with another body is refused; keys are per caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app import db
from app.auth import issue_token
from app.models import Observation

T = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()


def _obs(value: float, t: str = T) -> dict:
    return {"observations": [{"time": t, "code": "hr_bpm", "value": value, "unit": "/min"}]}


def _count(app, pid) -> int:
    with app.app_context(), db.new_session() as s:
        return s.scalar(select(func.count()).select_from(Observation)
                        .where(Observation.patient_id == pid))


def test_a_retried_post_stores_once_and_replays_the_answer(app, client, auth_headers):
    pid = client.post("/api/v1/patients", json={"age": 60},
                      headers=auth_headers).get_json()["id"]
    h = {**auth_headers, "Idempotency-Key": "bedside-42-0001"}
    first = client.post(f"/api/v1/patients/{pid}/observations", json=_obs(77), headers=h)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = client.post(f"/api/v1/patients/{pid}/observations", json=_obs(77), headers=h)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert _count(app, pid) == 1  # stored once

    other = client.post(f"/api/v1/patients/{pid}/observations", json=_obs(78), headers=h)
    assert other.status_code == 422 and other.mimetype == "application/problem+json"
    assert "different request body" in other.get_json()["detail"]
    assert _count(app, pid) == 1

    fresh = {**auth_headers, "Idempotency-Key": "bedside-42-0002"}
    assert client.post(f"/api/v1/patients/{pid}/observations", json=_obs(78),
                       headers=fresh).status_code == 201
    assert client.post(f"/api/v1/patients/{pid}/observations",
                       json=_obs(79)).status_code == 401  # no key, no auth: unchanged
    assert client.post(f"/api/v1/patients/{pid}/observations", json=_obs(79),
                       headers=auth_headers).status_code == 201  # no key: no dedup
    assert _count(app, pid) == 3


def test_keys_are_per_caller_and_admissions_replay(app, client, auth_headers):
    with app.app_context():
        other = {"Authorization": f"Bearer {issue_token('second-system', 'read,write')}"}
    key = {"Idempotency-Key": "admit-7"}
    a = client.post("/api/v1/patients", json={"age": 50}, headers={**auth_headers, **key})
    b = client.post("/api/v1/patients", json={"age": 50}, headers={**auth_headers, **key})
    c = client.post("/api/v1/patients", json={"age": 50}, headers={**other, **key})
    assert a.status_code == b.status_code == c.status_code == 201
    assert a.get_json()["id"] == b.get_json()["id"] != c.get_json()["id"]
    assert b.headers.get("Location") == a.headers.get("Location")


def test_a_bad_key_is_a_400_problem(client, auth_headers):
    for key in ("", "x" * 256, "tab\there"):
        resp = client.post("/api/v1/patients", json={"age": 50},
                           headers={**auth_headers, "Idempotency-Key": key})
        assert resp.status_code == 400 and resp.mimetype == "application/problem+json", key
