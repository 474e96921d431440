"""JSON logs and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import sys

from app.observability import JsonFormatter, Metrics


def test_json_log_lines_carry_extra_fields():
    record = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "rejected %s", ("req",),
                               None)
    record.status = 422
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["message"] == "rejected req"
    assert line["status"] == 422 and line["logger"] == "app.x"


def test_rejected_request_is_logged_as_json(client, auth_headers, caplog):
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "_twin_json", False)]
    assert len(handlers) == 1 and isinstance(handlers[0].formatter, JsonFormatter)
    assert handlers[0].stream is sys.stdout or handlers[0].stream.name == "<stdout>"
    client.post("/api/v1/patients", json={"age": 1}, headers=auth_headers)
    rejected = [r for r in caplog.records if r.getMessage() == "rejected request"]
    line = json.loads(handlers[0].format(rejected[-1]))
    assert line["status"] == 422 and "age" in line["detail"] and line["method"] == "POST"


def test_histogram_buckets_are_cumulative():
    m = Metrics()
    for seconds in (0.001, 0.02, 0.3):
        m.observe_request("api.x", "GET", 200, seconds)
    text = m.render()
    assert 'le="0.005"} 1' in text and 'le="0.025"} 2' in text and 'le="+Inf"} 3' in text
    assert 'twin_http_request_duration_seconds_count{endpoint="api.x",method="GET",' \
           'status="200"} 3' in text


def test_metrics_of_every_worker_are_summed(tmp_path):
    """Two worker processes' snapshots in METRICS_DIR: a scrape on either sees the totals."""
    from app.observability import Metrics

    a, b = Metrics(), Metrics()
    for _ in range(3):
        a.observe_request("api.get_forecast", "GET", 200, 0.004)
    b.observe_request("api.get_forecast", "GET", 200, 0.2)
    b.count_cache("hit")
    (tmp_path / "111.json").write_text(json.dumps(b.to_dict()))  # the other worker's file
    text = a.render_all(str(tmp_path))  # this worker writes its own and reads both
    line = 'twin_http_request_duration_seconds_count{endpoint="api.get_forecast",' \
           'method="GET",status="200"} 4'
    assert line in text.splitlines()
    assert 'twin_cache_total{outcome="hit"} 1' in text
    assert 'le="0.005"} 3' in text  # a's three fast ones; b's slow one is above
    (tmp_path / "222.json").write_text("{not json")  # a damaged snapshot is skipped
    assert line in a.render_all(str(tmp_path)).splitlines()


def test_environment_switches(monkeypatch, tmp_path):
    from app import create_app

    monkeypatch.setenv("PREWARM_FORECASTS", "0")
    monkeypatch.setenv("METRICS_DIR", str(tmp_path))
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert app.config["PREWARM_FORECASTS"] is False and "prewarm" not in app.extensions
    assert app.config["METRICS_DIR"] == str(tmp_path)
    monkeypatch.setenv("PREWARM_FORECASTS", "1")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert app.config["PREWARM_FORECASTS"] is True and "prewarm" in app.extensions
