"""Ward time in headless Chromium (issue 14, item 2): a ward in Europe/Berlin, a browser in
Berlin enters the current local time (the form's default) and it is stored as UTC, an hour
earlier in winter; a browser whose clock is set elsewhere is told that the pages are in ward
time, with both offsets."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scripts.servers import Server
from tests.app.test_browser import browser  # noqa: F401 - shared fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_bundle):
    srv = Server(tmp_path_factory.mktemp("ward-time"), model_bundle,
                 extra_env={"WARD_TIMEZONE": "Europe/Berlin"}).start()
    srv.flask("create-user", "dr-berlin", "--password-stdin", stdin="ward-time-1\n")
    yield srv
    srv.stop()


def _login(page, srv) -> None:
    page.goto(srv.url + "/login")
    page.fill("input[name=username]", "dr-berlin")
    page.fill("input[name=password]", "ward-time-1")
    page.click("button[type=submit]")


def test_the_current_local_time_is_accepted_and_stored_utc(browser, server):  # noqa: F811
    context = browser.new_context(timezone_id="Europe/Berlin")
    page = context.new_page()
    page.set_default_timeout(60_000)
    _login(page, server)
    page.wait_for_load_state("load")  # clock.js (deferred) has run
    assert page.is_hidden("#tz-notice")  # the browser is in the ward's zone
    page.click("text=Admit a patient")
    page.fill("input[name=age]", "61")
    page.click("#intake button[type=submit]")
    default = page.input_value("#obs-form input[name=time]")
    shown = datetime.fromisoformat(default).replace(tzinfo=BERLIN)
    assert abs(shown - datetime.now(BERLIN)) < timedelta(minutes=2)  # now, in ward time
    page.fill("#obs-form input[name=sbp_mmhg]", "131")
    page.fill("#obs-form input[name=dbp_mmhg]", "79")
    page.fill("#obs-form input[name=hr_bpm]", "77")
    page.click("#obs-form button[type=submit]")
    assert page.locator(".error").count() == 0  # not "in the future"
    row = page.locator("#observations tr", has_text="sbp_mmhg")
    assert default.replace("T", " ") in row.inner_text()  # shown in ward time
    pid = page.inner_text("h1").split()[1]
    stored = page.evaluate(
        "async (pid) => (await (await fetch(`/api/v1/patients/${pid}/observations`, "
        "{credentials: 'same-origin'})).json()).items", pid)
    times = {datetime.fromisoformat(o["time"]) for o in stored if o["code"] == "sbp_mmhg"}
    assert times == {shown}  # the same instant ...
    (t,) = times
    assert t.utcoffset() == timedelta(0) and t.hour == (shown.hour - 1) % 24  # ... in UTC
    context.close()


def test_a_browser_elsewhere_is_told_the_pages_are_ward_time(browser, server):  # noqa: F811
    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()
    page.set_default_timeout(60_000)
    _login(page, server)
    page.wait_for_selector("#tz-notice:not([hidden])")
    text = page.inner_text("#tz-notice")
    assert "ward time (Europe/Berlin, UTC+1)" in text and "UTC−5" in text
    context.close()
