"""Corrections and impossible readings on the patient page in headless Chromium (issue 14):
DBP above SBP refused in clinical words with the values kept; a wild reading marked entered
in error is shown struck through and no longer moves the forecast; the same set entered
twice is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scripts.servers import Server
from tests.app.test_browser import browser  # noqa: F401 - shared fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_bundle):
    srv = Server(tmp_path_factory.mktemp("corrections"), model_bundle).start()
    srv.flask("create-user", "dr-fix", "--password-stdin", stdin="strike-through-1\n")
    yield srv
    srv.stop()


def _login_and_admit(page, srv) -> None:
    page.goto(srv.url + "/login")
    page.fill("input[name=username]", "dr-fix")
    page.fill("input[name=password]", "strike-through-1")
    page.click("button[type=submit]")
    page.click("text=Admit a patient")
    page.fill("input[name=age]", "64")
    page.click("#intake button[type=submit]")
    assert page.inner_text("h1").startswith("Patient p-")


def _record(page, sbp: str, dbp: str, hr: str, minutes_ago: float) -> None:
    when = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M")
    page.fill("#obs-form input[name=time]", when)
    page.fill("#obs-form input[name=sbp_mmhg]", sbp)
    page.fill("#obs-form input[name=dbp_mmhg]", dbp)
    page.fill("#obs-form input[name=hr_bpm]", hr)
    page.click("#obs-form button[type=submit]")


def _current_forecast(page) -> str:
    """The forecast summary once it is current: the page shows the last forecast marked
    "updating" and live.js swaps in the new one when the warm-up has computed it."""
    page.wait_for_selector("section#forecast:not([data-pending]) #forecast-summary")
    return page.inner_text("#forecast-summary")


def test_impossible_reading_refused_and_wrong_reading_struck_through(browser, server):  # noqa: F811
    page = browser.new_page()
    page.set_default_timeout(60_000)
    _login_and_admit(page, server)

    _record(page, "80", "120", "70", 60)  # DBP above SBP: refused, values kept
    assert "Diastolic BP must be lower than systolic BP" in page.inner_text(".error")
    assert "Diastolic BP must be lower than systolic BP" in page.inner_text("#err-dbp_mmhg")
    assert page.get_attribute("#obs-form input[name=dbp_mmhg]", "aria-invalid") == "true"
    assert page.input_value("#obs-form input[name=sbp_mmhg]") == "80"
    assert page.input_value("#obs-form input[name=dbp_mmhg]") == "120"
    assert page.input_value("#obs-form input[name=hr_bpm]") == "70"
    assert "None yet" in page.inner_text("#observations")

    _record(page, "130", "80", "72", 90)
    _record(page, "240", "80", "74", 30)  # a wild systolic: the forecast follows it
    assert "SBP 240 mmHg" in _current_forecast(page)

    wild = page.locator("#observations tr", has_text="sbp_mmhg").filter(has_text="240")
    assert wild.count() == 1
    wild.locator("button", has_text="Mark entered in error").click()
    row = page.locator("#observations tr.entered-in-error")
    assert row.count() == 1
    assert "240" in row.inner_text() and "entered in error" in row.inner_text()
    style = row.locator("del").first.evaluate("d => getComputedStyle(d).textDecorationLine")
    assert "line-through" in style
    assert row.locator("button").count() == 0  # marked once
    assert "SBP 130 mmHg" in _current_forecast(page)  # no longer used
    assert page.locator("#observations tr", has_text="130").locator(
        "button", has_text="Mark entered in error").count() == 1

    # the same set entered again (a double submit) is refused, values kept
    when = page.locator("#observations tr", has_text="130").locator("td").first.inner_text()
    page.fill("#obs-form input[name=time]", when.replace(" ", "T"))
    for name, value in (("sbp_mmhg", "130"), ("dbp_mmhg", "80"), ("hr_bpm", "72")):
        page.fill(f"#obs-form input[name={name}]", value)
    page.click("#obs-form button[type=submit]")
    assert "already recorded" in page.inner_text(".error")
    assert page.input_value("#obs-form input[name=sbp_mmhg]") == "130"
    page.close()
