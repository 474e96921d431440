"""The pages in headless Chromium (Debian's, driven by playwright): log in, admit a patient,
enter observations, see the forecast plot load, run a what-if; bad input shows a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.servers import Server
from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("chromium or playwright missing: .ci/setup.d/20-chromium.sh installs it")
        pytest.skip("no /usr/bin/chromium here (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_bundle):
    srv = Server(tmp_path_factory.mktemp("browser"), model_bundle).start()
    srv.flask("create-user", "dr-who", "--password-stdin", stdin="tardis-1963\n")
    yield srv
    srv.stop()


def _image_loaded(page, selector: str) -> bool:
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('{selector}'); "
        "return i && i.complete; }", timeout=60_000)
    return page.eval_on_selector(selector, "i => i.naturalWidth > 0")


def test_clinician_workflow(browser, server):
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url + "/")
    assert "/login" in page.url  # anonymous users are sent to the login page
    page.fill("input[name=username]", "dr-who")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "wrong password" in page.inner_text(".error")
    page.fill("input[name=username]", "dr-who")
    page.fill("input[name=password]", "tardis-1963")
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Ward overview"

    page.click("text=Admit a patient")
    page.fill("input[name=age]", "67")
    page.select_option("select[name=renal_function]", "impaired")
    page.fill("input[name=external_id]", "bed-12")
    page.click("#intake button[type=submit]")
    assert page.inner_text("h1").startswith("Patient p-")
    assert "No observations yet" in page.inner_text("#forecast-unavailable")

    page.fill("#obs-form input[name=sbp_mmhg]", "900")
    page.click("#obs-form button[type=submit]")
    assert "Systolic must be between" in page.inner_text(".error")  # in clinical words
    assert page.input_value("#obs-form input[name=sbp_mmhg]") == "900"  # value kept
    assert "None yet" in page.inner_text("#observations")

    page.fill("#obs-form input[name=sbp_mmhg]", "162")
    page.fill("#obs-form input[name=dbp_mmhg]", "97")
    page.fill("#obs-form input[name=hr_bpm]", "74")
    page.click("#obs-form button[type=submit]")
    assert "162" in page.inner_text("#observations")
    assert _image_loaded(page, "#bp-plot")
    assert _image_loaded(page, "#drug-plot")
    assert "In 24 h: SBP" in page.inner_text("#forecast-summary")

    page.fill("#whatif-form input[name=dose_mg]", "20")
    page.click("#whatif-form button[type=submit]")
    # the post answers at once ("computing"); live.js swaps the result in when computed
    page.wait_for_selector("section#whatif-result:not([data-pending]) #whatif-table")
    assert "proposed" in page.inner_text("#whatif-table")
    assert _image_loaded(page, "#whatif-plot")

    page.goto(server.url + "/?sort=sbp&order=desc")
    assert "bed-12" in page.inner_text("#ward")
    page.close()
