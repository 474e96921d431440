"""Dosing safety and fresh plots on the patient page in headless Chromium (issue 14): 480 mg
a day refused in clinical words with the form values kept; a hypotension warning that only
the ticked "confirm" box lets through; a new reading changes the BP plot's URL and picture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scripts.servers import Server
from tests.app.test_browser import _image_loaded, browser  # noqa: F401 - shared fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_bundle):
    srv = Server(tmp_path_factory.mktemp("dosing"), model_bundle).start()
    srv.flask("create-user", "dr-dose", "--password-stdin", stdin="max-80-mg\n")
    yield srv
    srv.stop()


def _login_and_admit(page, srv) -> None:
    page.goto(srv.url + "/login")
    page.fill("input[name=username]", "dr-dose")
    page.fill("input[name=password]", "max-80-mg")
    page.click("button[type=submit]")
    page.click("text=Admit a patient")
    page.fill("input[name=age]", "70")
    page.click("#intake button[type=submit]")
    assert page.inner_text("h1").startswith("Patient p-")


def _record(page, sbp: str, dbp: str, hr: str, minutes_ago: float) -> None:
    when = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M")
    page.fill("#obs-form input[name=time]", when)
    page.fill("#obs-form input[name=sbp_mmhg]", sbp)
    page.fill("#obs-form input[name=dbp_mmhg]", dbp)
    page.fill("#obs-form input[name=hr_bpm]", hr)
    page.click("#obs-form button[type=submit]")


def test_dosing_refusal_and_confirmation_in_chromium(browser, server):  # noqa: F811
    page = browser.new_page()
    page.set_default_timeout(60_000)
    _login_and_admit(page, server)
    _record(page, "96", "58", "118", 30)

    page.fill("#regimen-form input[name=dose_mg]", "80")
    page.fill("#regimen-form input[name=interval_h]", "4")
    page.click("#regimen-form button[type=submit]")
    assert ("Benazepril 80 mg every 4 h is 480 mg a day; the maximum is 80 mg a day."
            in page.inner_text(".error"))
    assert page.input_value("#regimen-form input[name=dose_mg]") == "80"  # values kept
    assert page.input_value("#regimen-form input[name=interval_h]") == "4"
    assert page.inner_text("#regimen") == "untreated"

    page.fill("#regimen-form input[name=dose_mg]", "10")
    page.fill("#regimen-form input[name=interval_h]", "24")
    page.click("#regimen-form button[type=submit]")
    warnings = page.inner_text("#regimen-warnings")
    assert "96/58 mmHg" in warnings and "hypotension" in warnings
    page.click("#confirm-form button[type=submit]")  # not ticked: refused again
    assert "Tick the box" in page.inner_text(".error")
    assert page.inner_text("#regimen") == "untreated"
    page.check("#confirm-form input[name=confirm]")
    page.click("#confirm-form button[type=submit]")
    assert page.inner_text("#regimen").startswith("benazepril 10 mg every 24 h")
    assert "low-sbp" in page.inner_text("#regimen-history")

    # fresh plots: the next reading changes the BP plot's URL and its picture (once the
    # forecast is current: meanwhile the page shows the last one, marked "updating")
    current = "section#forecast:not([data-pending]) #bp-plot"
    page.wait_for_selector(current)
    assert _image_loaded(page, "#bp-plot")
    before_src = page.get_attribute("#bp-plot", "src")
    before = page.eval_on_selector("#bp-plot", "i => { const c = document.createElement("
                                   "'canvas'); c.width = i.naturalWidth; c.height = "
                                   "i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0); "
                                   "return c.toDataURL(); }")
    _record(page, "142", "84", "80", 5)
    page.wait_for_selector(current)
    assert _image_loaded(page, "#bp-plot")
    assert page.get_attribute("#bp-plot", "src") != before_src
    after = page.eval_on_selector("#bp-plot", "i => { const c = document.createElement("
                                  "'canvas'); c.width = i.naturalWidth; c.height = "
                                  "i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0); "
                                  "return c.toDataURL(); }")
    assert after != before

    page.click("#stop-form button[type=submit]")
    assert "(stopped)" in page.inner_text("#regimen")
    page.close()
