"""End to end through real gunicorn on loopback: token from the CLI, then the API flow."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from scripts.servers import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_bundle):
    srv = Server(tmp_path_factory.mktemp("e2e"), model_bundle,
                 extra_env={"LOG_LEVEL": "INFO"}).start()  # INFO: gunicorn's lines too
    yield srv
    srv.stop()


def call(srv, method, path, token=None, body=None, content_type="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(srv.url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_api_flow_through_gunicorn(server):
    token = server.flask("create-token", "e2e-client", "--scopes", "read,write") \
        .strip().splitlines()[-1]
    status, _, body = call(server, "GET", "/readyz")
    assert status == 200, body
    assert call(server, "GET", "/api/v1/patients")[0] == 401

    status, headers, body = call(server, "POST", "/api/v1/patients", token,
                                 {"age": 71, "renal_function": "impaired"})
    assert status == 201 and headers["Content-Type"] == "application/json"
    pid = json.loads(body)["id"]
    now = datetime.now(UTC)
    status, _, _ = call(server, "PUT", f"/api/v1/patients/{pid}/regimen", token,
                        {"drug": "benazepril", "dose_mg": 10, "interval_h": 24,
                         "start": (now - timedelta(days=1)).isoformat(),
                         "confirm": True})  # impaired renal function: above the 5 mg start
    assert status == 200
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                      "effectiveDateTime": (now - timedelta(hours=h)).isoformat(),
                      "component": [
                          {"code": {"coding": [{"system": "http://loinc.org",
                                                "code": "8480-6"}]},
                           "valueQuantity": {"value": 160 - h, "code": "mm[Hg]",
                                             "system": "http://unitsofmeasure.org"}},
                          {"code": {"coding": [{"system": "http://loinc.org",
                                                "code": "8462-4"}]},
                           "valueQuantity": {"value": 96, "code": "mm[Hg]",
                                             "system": "http://unitsofmeasure.org"}}]}}
        for h in (20, 10, 1)]}
    status, _, body = call(server, "POST", f"/api/v1/patients/{pid}/observations", token,
                           bundle, "application/fhir+json")
    assert status == 201, body
    assert json.loads(body)["recorded"] == 6

    status, headers, body = call(server, "POST", f"/api/v1/patients/{pid}/observations", token,
                                 {"observations": [{"time": now.isoformat(), "code": "sbp_mmhg",
                                                    "value": 900, "unit": "mm[Hg]"}]})
    assert status == 422 and headers["Content-Type"] == "application/problem+json"

    status, _, body = call(server, "GET", f"/api/v1/patients/{pid}/forecast?horizon_h=24",
                           token)
    assert status == 200, body
    fc = json.loads(body)
    assert len(fc["endpoints"]["sbp_mmhg"]["median"]) == 25
    status, headers, body = call(server, "GET", f"/api/v1/patients/{pid}/forecast.png", token)
    assert status == 200 and body.startswith(b"\x89PNG")
    assert "frame-ancestors" in headers["Content-Security-Policy"]
    status, _, body = call(server, "POST", f"/api/v1/patients/{pid}/scenarios", token,
                           {"regimen": {"dose_mg": 20, "start": now.isoformat()},
                            "horizon_h": 24})
    assert status == 200, body
    status, _, body = call(server, "GET", "/metrics", token)
    assert status == 200 and b"twin_forecast_duration_seconds" in body


def test_server_log_is_json_lines(server):
    """gunicorn's own lines (boot, workers) and the app's are JSON objects, one per line."""
    server.log.flush()
    lines = [ln for ln in (server.workdir / "gunicorn.log").read_text().splitlines()
             if ln.strip()]
    loggers = set()
    for line in lines:
        record = json.loads(line)  # fails on any plain-text line
        assert {"time", "level", "logger", "message"} <= set(record)
        loggers.add(record["logger"])
    assert "gunicorn.error" in loggers  # "Listening at ...", "Booting worker ..."


def test_metrics_count_every_worker(server):
    """/metrics through gunicorn (2 workers) counts the requests of both workers."""
    import re
    import time

    token = server.flask("create-token", "e2e-metrics", "--scopes", "read") \
        .strip().splitlines()[-1]

    def healthz_count() -> int:
        status, _, body = call(server, "GET", "/metrics", token)
        assert status == 200
        return sum(int(m) for m in re.findall(
            r'^twin_http_request_duration_seconds_count\{endpoint="health\.healthz"[^}]*\} (\d+)$',
            body.decode(), flags=re.MULTILINE))

    before = healthz_count()
    for _ in range(40):  # fresh connections: the kernel spreads them over both workers
        assert call(server, "GET", "/healthz")[0] == 200
    time.sleep(1.5)  # each worker's trailing snapshot
    assert healthz_count() - before == 40
