"""Pages on the test client: ward sorting and budget, intake errors, forms write nothing bad."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture
def clinician(model_app):
    runner = model_app.test_cli_runner()
    runner.invoke(args=["create-user", "dr-b", "--password-stdin"], input="ward-round-7\n")
    client = model_app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = client.post("/login", data={"username": "dr-b", "password": "ward-round-7",
                                       "csrf_token": csrf})
    assert resp.status_code == 302
    with client.session_transaction() as sess:
        assert sess["csrf"] != csrf  # a new session (and token) after login
        csrf = sess["csrf"]
    return client, csrf


def _admit(client, csrf, age, sbp=None) -> str:
    resp = client.post("/patients/new", data={"age": str(age), "renal_function": "normal",
                                              "glucose": "normal", "csrf_token": csrf})
    assert resp.status_code == 302, resp.data[:500]
    pid = resp.location.rsplit("/", 1)[-1]
    if sbp is not None:
        when = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        r = client.post(f"/patients/{pid}/observations", data={
            "time": when, "sbp_mmhg": str(sbp), "dbp_mmhg": "90", "csrf_token": csrf})
        assert r.status_code == 302, r.data[:800]
    return pid


def test_ward_lists_and_sorts(clinician):
    client, csrf = clinician
    a = _admit(client, csrf, 50, 171)
    b = _admit(client, csrf, 60, 128)
    c = _admit(client, csrf, 70)
    page = client.get("/?sort=sbp&order=desc").get_data(as_text=True)
    assert page.index(a) < page.index(b) < page.index(c)
    assert "badge level-no-data" in page and 'data-patient="' + c + '"' in page
    page = client.get("/?sort=sbp").get_data(as_text=True)
    assert page.index(b) < page.index(a)


def test_ward_budget_defers_forecasts(model_app, clinician):
    client, csrf = clinician
    _admit(client, csrf, 55, 150)
    model_app.config["WARD_FORECAST_BUDGET_S"] = 0
    assert "forecast pending" in client.get("/").get_data(as_text=True)


NORMAL_SET = {"rr_per_min": "16", "spo2_pct": "97", "on_oxygen": "no", "sbp_mmhg": "125",
              "dbp_mmhg": "80", "hr_bpm": "72", "acvpu": "A", "temp_c": "37.0"}  # NEWS2 0
SICK_SET = {"rr_per_min": "26", "spo2_pct": "90", "on_oxygen": "yes", "o2_flow_l_per_min": "2",
            "sbp_mmhg": "95", "dbp_mmhg": "60", "hr_bpm": "120", "acvpu": "A",
            "temp_c": "38.5"}  # NEWS2 3 + 3 + 2 + 2 + 2 + 0 + 1 = 13


def _record_set(client, csrf, pid, values, hours_ago=0.5):
    when = (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")
    r = client.post(f"/patients/{pid}/observations",
                    data={"time": when, **values, "csrf_token": csrf})
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]


def _row(page: str, pid: str) -> str:
    start = page.index(f'<tr id="row-{pid}"')
    return page[start:page.index("</tr>", start)]


def test_ward_orders_by_severity_then_most_overdue(clinician):
    client, csrf = clinician
    fresh = _admit(client, csrf, 50)
    _record_set(client, csrf, fresh, NORMAL_SET, hours_ago=0.5)
    old = _admit(client, csrf, 51)
    _record_set(client, csrf, old, NORMAL_SET, hours_ago=72)
    less_old = _admit(client, csrf, 52)
    _record_set(client, csrf, less_old, NORMAL_SET, hours_ago=20)
    sick = _admit(client, csrf, 53)
    _record_set(client, csrf, sick, SICK_SET, hours_ago=0.2)
    empty = _admit(client, csrf, 54)
    page = client.get("/").get_data(as_text=True)
    order = sorted((fresh, old, less_old, sick, empty), key=page.index)
    assert order == [sick, old, less_old, fresh, empty], order
    assert "badge level-critical" in _row(page, sick)
    assert "<strong>13</strong>" in _row(page, sick)  # NEWS2 13, high
    assert "high" in _row(page, sick)
    assert "badge level-stable" in _row(page, fresh)
    assert "<strong>0</strong>" in _row(page, fresh)
    assert "no readings" in _row(page, empty)
    # the order reversed on request, and sorting by NEWS2
    page = client.get("/?sort=status&order=desc").get_data(as_text=True)
    assert page.index(empty) < page.index(fresh) < page.index(sick)
    page = client.get("/?sort=news2&order=desc").get_data(as_text=True)
    assert page.index(sick) < page.index(fresh)


def test_ward_marks_stale_and_incomplete_sets(clinician):
    client, csrf = clinician
    old = _admit(client, csrf, 60)
    _record_set(client, csrf, old, NORMAL_SET, hours_ago=24 * 3 + 2.2)
    partial = _admit(client, csrf, 61)
    _record_set(client, csrf, partial, {"sbp_mmhg": "118", "dbp_mmhg": "70", "hr_bpm": "88"})
    page = client.get("/").get_data(as_text=True)
    row = _row(page, old)
    assert 'class="level-watch stale"' in row  # old data: never "stable"
    assert "overdue" in row and "3 days 2 h ago" in row
    assert "stale" in row.split('class="news2"', 1)[1]
    row = _row(page, partial)
    news2 = row.split('<td class="news2">', 1)[1].split("</td>", 1)[0]
    assert "incomplete" in news2 and "<strong>" not in news2  # not shown as a score
    assert "respiration rate" in news2 and "temperature" in news2
    assert "88" in row.split('<td class="hr">', 1)[1].split("</td>", 1)[0]
    assert "118/70" in row


def test_ward_trend_arrow_and_time_since(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, 70)
    for i, sbp in enumerate((150, 146, 140, 128, 118, 110)):
        _record_set(client, csrf, pid, {"sbp_mmhg": str(sbp), "dbp_mmhg": "70"},
                    hours_ago=2 * (5 - i) + 2 + 1 / 6)  # the last 2 h 10 min ago
    row = _row(client.get("/").get_data(as_text=True), pid)
    assert "trend-falling" in row and "↓" in row
    assert "2 h 10 min ago" in row or "2 h 11 min ago" in row  # the form drops seconds


def test_observation_set_form_refused_whole_with_clinical_messages(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, 66)
    when = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    bad = client.post(f"/patients/{pid}/observations", data={
        "time": when, "rr_per_min": "200", "spo2_pct": "97", "on_oxygen": "no",
        "fio2_pct": "40", "sbp_mmhg": "80", "dbp_mmhg": "120", "hr_bpm": "abc",
        "acvpu": "X", "temp_c": "99", "csrf_token": csrf})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    for message in ("Respiratory rate must be between 1 and 80 /min.",
                    "Diastolic BP must be lower than systolic BP.", "Heart rate: enter a number.",
                    "Consciousness: choose A, C, V, P or U.",
                    "Temperature must be between 25 and 45 °C.",
                    "set &#39;On oxygen&#39; to yes"):
        assert message in page, message
    assert 'id="err-rr_per_min"' in page and 'aria-invalid="true"' in page
    assert 'name="rr_per_min" type="number" step="1" min="1" max="80" value="200"' in page
    assert "None yet." in page  # nothing stored
    assert client.get(f"/patients/{pid}").get_data(as_text=True).count("None yet.") == 1
    future = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    r = client.post(f"/patients/{pid}/observations",
                    data={"time": future, **NORMAL_SET, "csrf_token": csrf})
    assert r.status_code == 422 and "The time is in the future." in r.get_data(as_text=True)
    r = client.post(f"/patients/{pid}/observations", data={"time": when, "csrf_token": csrf})
    assert r.status_code == 422 and "Enter at least one value." in r.get_data(as_text=True)


def test_observation_set_form_stores_the_set(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, 66)
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert 'id="spo2-scale">scale 1' in page and 'name="acvpu"' in page
    _record_set(client, csrf, pid, {**SICK_SET, "potassium_mmol_per_l": "4.1"})
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "All readings (10)" in page
    vitals = page.split('id="vitals"', 1)[1].split("</table>", 1)[0]
    row = vitals.split("<tr data-time=", 1)[1].split("</tr>", 1)[0]
    for cell in ("95/60", "<td>72</td>", "<td>120</td>", "<td>26</td>", "<td>90</td>",
                 "oxygen 2 L/min", "38.5", "<strong>13</strong> high"):
        assert cell in row, cell
    live = page.split('id="live-panel"', 1)[1].split("</section>", 1)[0]
    assert "13 (high)" in live and "critical" in live and "120" in live


def test_a_failing_status_rule_shows_and_never_reads_stable(clinician, monkeypatch):
    from app.web import ward

    client, csrf = clinician
    pid = _admit(client, csrf, 50)
    _record_set(client, csrf, pid, NORMAL_SET)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ward, "patient_status", broken)
    resp = client.get("/")
    assert resp.status_code == 200
    row = _row(resp.get_data(as_text=True), pid)
    assert "badge level-watch" in row and "Status rules failed" in row


def test_live_fragments(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, 58, 150)
    row = client.get(f"/ward/rows/{pid}")
    assert row.status_code == 200
    html = row.get_data(as_text=True)
    assert html.strip().startswith(f'<tr id="row-{pid}"')
    assert 'data-pending="1"' in html and "forecast computing" in html  # never waits for a fit
    client.get("/")  # the page computes it (within its budget) ...
    html = client.get(f"/ward/rows/{pid}").get_data(as_text=True)
    assert "data-pending" not in html and "forecast computing" not in html  # ... then cached
    assert client.get("/ward/rows/p-unknown").status_code == 404
    rows = client.get("/ward/rows").get_data(as_text=True)
    assert f'data-patient="{pid}"' in rows and "<html" not in rows
    panel = client.get(f"/patients/{pid}/live").get_data(as_text=True)
    assert 'id="live-panel"' in panel and "150/90" in panel
    page = client.get("/").get_data(as_text=True)
    assert "live.js" in page and 'data-events="/ward/events"' in page


def _stream(client, headers=None) -> str:
    resp = client.get("/ward/events", headers=headers or {}, buffered=True)
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    return resp.get_data(as_text=True)


def test_ward_events_stream(model_app, clinician):
    from app import events

    client, csrf = clinician
    model_app.config.update(LIVE_STREAM_S=0.3, LIVE_POLL_S=0.1)
    pid = _admit(client, csrf, 58)
    body = _stream(client)
    assert body.startswith("retry: 500") and "event: hello" in body
    token = body.split("id: ", 1)[1].split("\n", 1)[0]
    assert "event: resync" not in _stream(client, {"Last-Event-ID": token})
    with model_app.app_context():
        before = events.cursor()
    q = events.BUS.subscribe()
    try:
        _record_set(client, csrf, pid, {"hr_bpm": "101"})
        assert q.get(timeout=1) == {"type": "patient", "patient_id": pid}
    finally:
        events.BUS.unsubscribe(q)
    with model_app.app_context():
        assert events.changed(before, events.cursor()) == [pid]
    assert "event: resync" in _stream(client, {"Last-Event-ID": token})
    # a stream whose body never started (the client left at once) holds no slot
    model_app.config["LIVE_MAX_STREAMS"] = 1
    for _ in range(3):
        client.get("/ward/events", buffered=False).close()
    assert '"streaming":true' in _stream(client)
    # all stream slots taken: an immediate answer that asks the browser to poll slowly
    from app.web import live

    slot = live._slots.setdefault("1", __import__("threading").BoundedSemaphore(1))
    assert slot.acquire(blocking=False)
    try:
        body = _stream(client, {"Last-Event-ID": token})
        assert body.startswith("retry: 5000") and '"streaming":false' in body
    finally:
        slot.release()


def test_acknowledge_alert_from_the_ward(model_app, clinician):
    from app.db import new_session
    from app.models import Alert

    client, csrf = clinician
    pid = _admit(client, csrf, 71, 150)
    with model_app.app_context(), new_session() as s:
        a = Alert(patient_id=pid, rule="sbp_low", level="urgent", status="raised",
                  open_key=f"{pid}:sbp_low", message="SBP below 90 mmHg")
        s.add(a)
        s.commit()
        alert_id = a.id
    row = _row(client.get("/").get_data(as_text=True), pid)
    assert "SBP below 90 mmHg" in row and "Acknowledge" in row
    assert f'action="/alerts/{alert_id}/acknowledge"' in row
    r = client.post(f"/alerts/{alert_id}/acknowledge",
                    data={"note": "seen, repeat in 15 min", "next": "/", "csrf_token": csrf})
    assert r.status_code == 303 and r.location.endswith("/")
    row = _row(client.get("/").get_data(as_text=True), pid)
    assert "acknowledged" in row and "Acknowledge</button>" not in row
    again = client.post(f"/alerts/{alert_id}/acknowledge",
                        data={"note": "twice", "csrf_token": csrf})
    assert again.status_code == 409 and b"already acknowledged" in again.data
    no_csrf = client.post(f"/alerts/{alert_id}/acknowledge", data={"note": "x"})
    assert no_csrf.status_code == 400
    as_json = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": csrf},
                          headers={"Accept": "application/json"})  # live.js
    assert as_json.status_code == 409 and "already acknowledged" in as_json.json["error"]
    assert client.post("/alerts/999999/acknowledge", data={"csrf_token": csrf}).status_code == 404


def test_intake_error_is_shown(clinician):
    client, csrf = clinician
    resp = client.post("/patients/new", data={"age": "7", "csrf_token": csrf})
    assert resp.status_code == 422
    assert b"age" in resp.data and b'class="error"' in resp.data


def test_patient_page_and_regimen_form(clinician):
    client, csrf = clinician
    pid = _admit(client, csrf, 64, 155)
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    resp = client.post(f"/patients/{pid}/regimen", data={
        "drug": "benazepril", "dose_mg": "10", "interval_h": "24", "start": start,
        "csrf_token": csrf})
    assert resp.status_code == 302
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "benazepril 10 mg every 24 h" in page
    assert 'id="bp-plot"' in page and "In 24 h: SBP" in page
    bad = client.post(f"/patients/{pid}/regimen", data={
        "drug": "benazepril", "dose_mg": "500", "start": start, "csrf_token": csrf})
    assert bad.status_code == 422 and b"dose_mg" in bad.data
    wave = client.get(f"/patients/{pid}/waveform.png")
    assert wave.status_code == 200 and wave.data.startswith(b"\x89PNG")
