"""Fresh plots (issue 14, item 1): the patient page's <img> URLs carry the plot version (data
version, model version, issue hour, plotting code) and are immutable; a new reading changes
the URL and the bytes; unversioned plot URLs are no-cache with an ETag (304 while unchanged)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

IMMUTABLE = "private, max-age=31536000, immutable"


@pytest.fixture
def clinician(model_app):
    runner = model_app.test_cli_runner()
    runner.invoke(args=["create-user", "dr-f", "--password-stdin"], input="fresh-plots-1\n")
    client = model_app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    client.post("/login", data={"username": "dr-f", "password": "fresh-plots-1",
                                "csrf_token": csrf})
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    return client, csrf


def _when(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def _record(client, csrf, pid, sbp, hours_ago):
    resp = client.post(f"/patients/{pid}/observations", data={
        "time": _when(hours_ago), "sbp_mmhg": str(sbp), "dbp_mmhg": "88", "hr_bpm": "70",
        "csrf_token": csrf})
    assert resp.status_code == 302, resp.data[:600]


def _img(page: str, img_id: str) -> str:
    m = re.search(rf'<img id="{img_id}"[^>]* src="([^"]+)"', page)
    assert m, img_id
    return m.group(1).replace("&amp;", "&")


def test_a_new_reading_changes_the_plot_url_and_bytes(clinician):
    client, csrf = clinician
    resp = client.post("/patients/new", data={"age": "58", "renal_function": "normal",
                                              "glucose": "normal", "csrf_token": csrf})
    pid = resp.location.rsplit("/", 1)[-1]
    _record(client, csrf, pid, 162, 3)
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    urls = {i: _img(page, i) for i in ("bp-plot", "ras-plot", "drug-plot", "waveform")}
    assert all("v=" in u for u in urls.values())
    first = client.get(urls["bp-plot"])
    assert first.status_code == 200 and first.headers["Cache-Control"] == IMMUTABLE
    wave = client.get(urls["waveform"])
    assert wave.status_code == 200 and wave.headers["Cache-Control"] == IMMUTABLE

    _record(client, csrf, pid, 121, 1)
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    new_urls = {i: _img(page, i) for i in urls}
    assert all(new_urls[i] != urls[i] for i in urls)  # every plot URL changed
    second = client.get(new_urls["bp-plot"])
    assert second.status_code == 200 and second.data != first.data
    # the old URL is no longer current: never cached as immutable again
    assert client.get(urls["bp-plot"]).headers["Cache-Control"] == "private, no-cache"


def test_unversioned_plot_revalidates_with_an_etag(clinician):
    client, csrf = clinician
    resp = client.post("/patients/new", data={"age": "61", "renal_function": "normal",
                                              "glucose": "normal", "csrf_token": csrf})
    pid = resp.location.rsplit("/", 1)[-1]
    _record(client, csrf, pid, 150, 2)
    url = f"/api/v1/patients/{pid}/forecast.png?panel=bp"
    first = client.get(url)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data
    _record(client, csrf, pid, 128, 1)
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.data != first.data
    wave = client.get(f"/patients/{pid}/waveform.png")
    assert wave.headers["Cache-Control"] == "private, no-cache"
    assert client.get(f"/patients/{pid}/waveform.png",
                      headers={"If-None-Match": wave.headers["ETag"]}).status_code == 304
