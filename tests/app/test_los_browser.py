"""The expected remaining stay in headless Chromium through gunicorn: the ward cell and the
patient page's estimate with its trend drawn (screenshot kept in the test's tmp dir)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.app.test_browser import browser, server  # noqa: F401 (fixtures)
from tests.app.test_e2e import call

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_remaining_stay_on_ward_and_patient_page(browser, server, tmp_path):  # noqa: F811
    token = server.flask("create-token", "los-client", "--scopes", "read,write") \
        .strip().splitlines()[-1]
    status, _, body = call(server, "POST", "/api/v1/patients", token, {"age": 74})
    pid = json.loads(body)["id"]
    now = datetime.now(UTC)
    obs = [{"time": (now - timedelta(hours=h)).isoformat(), "code": c, "value": v, "unit": u}
           for h in range(40, 0, -4) for c, v, u in
           (("sbp_mmhg", 150 - 40 + h, "mm[Hg]"), ("dbp_mmhg", 80, "mm[Hg]"),
            ("hr_bpm", 120 - h, "/min"), ("rr_per_min", 24, "/min"), ("spo2_pct", 92, "%"),
            ("temp_c", 38.4, "Cel"))]
    status, _, body = call(server, "POST", f"/api/v1/patients/{pid}/observations", token,
                           {"observations": obs})
    assert status == 201, body
    status, _, body = call(server, "GET", f"/api/v1/patients/{pid}", token)
    stay = json.loads(body)["remaining_stay"]

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(server.url + "/login")
    page.fill("input[name=username]", "dr-who")
    page.fill("input[name=password]", "tardis-1963")
    page.click("button[type=submit]")
    cell = page.inner_text(f"#row-{pid} td.stay")
    assert cell == stay["text"], cell
    page.goto(f"{server.url}/patients/{pid}")
    section = page.locator("#remaining-stay")
    assert stay["text"] in section.inner_text()
    box = page.locator("svg.stay-trend").bounding_box()
    assert box and box["width"] >= 300 and box["height"] >= 80  # drawn, not collapsed
    points = page.get_attribute("svg.stay-trend polyline", "points").split()
    assert len(points) == len(stay["trend"])
    xs = [float(p.split(",")[0]) for p in points]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 250  # oldest left, now right, full width
    section.screenshot(path=str(tmp_path / "remaining-stay.png"))
    assert (tmp_path / "remaining-stay.png").stat().st_size > 2000
    page.close()

