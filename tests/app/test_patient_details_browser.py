"""Patient details, discharge and readmission in headless Chromium (issue 14 point 4): the
age edited on the details page shows in the change history; a discharged patient is gone
from the ward and found by the Discharged search; readmitted, they are back on the ward."""

from __future__ import annotations

import pytest

from scripts.servers import Server
from tests.app.test_browser import browser  # noqa: F401 - shared fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_bundle):
    srv = Server(tmp_path_factory.mktemp("details"), model_bundle).start()
    srv.flask("create-user", "dr-desk", "--password-stdin", stdin="discharge-letter-2\n")
    yield srv
    srv.stop()


def test_edit_age_discharge_find_and_readmit(browser, server):  # noqa: F811
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url + "/login")
    page.fill("input[name=username]", "dr-desk")
    page.fill("input[name=password]", "discharge-letter-2")
    page.click("button[type=submit]")
    page.click("text=Admit a patient")
    page.fill("input[name=age]", "64")
    page.fill("input[name=external_id]", "MRN-Brow5")
    page.click("#intake button[type=submit]")
    assert page.inner_text("h1").startswith("Patient p-")
    pid = page.url.rstrip("/").rsplit("/", 1)[-1]

    page.goto(f"{server.url}/patients/{pid}/details")
    assert "No changes yet." in page.inner_text("main")
    page.fill("#details-form input[name=external_id]", "has space")  # refused, kept
    page.click("#details-form button[type=submit]")
    assert "The external pseudonym may have up to 64 letters" in page.inner_text(".error")
    assert page.input_value("#details-form input[name=external_id]") == "has space"
    page.fill("#details-form input[name=external_id]", "MRN-Brow5")
    page.fill("#details-form input[name=age]", "67")
    page.click("#details-form button[type=submit]")
    row = page.locator("#history-table tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[1:] == ["Age (years)", "64", "67", "dr-desk"]

    page.check("#discharge-form input[name=confirm]")
    page.click("#discharge-form button[type=submit]")
    assert "Discharged on" in page.inner_text("#discharged-notice")
    assert page.locator("#details-form input[name=age]").is_disabled()
    assert "Admission" in page.locator("#history-table tbody tr").first.inner_text()

    page.click("header nav >> text=Ward")
    assert pid not in page.inner_text("main")
    page.click("header nav >> text=Discharged")
    page.fill("#discharged-search input[name=q]", "brow5")
    page.click("#discharged-search button[type=submit]")
    found = page.locator("#discharged-table tbody tr")
    assert found.count() == 1 and "MRN-Brow5" in found.inner_text()
    found.locator("a", has_text=pid).click()
    assert page.inner_text("h1").startswith(f"Patient {pid}")

    page.goto(f"{server.url}/patients/{pid}/details")
    page.check("#readmit-form input[name=confirm]")
    page.click("#readmit-form button[type=submit]")
    assert page.inner_text("h1").startswith(f"Patient {pid}")
    page.click("header nav >> text=Ward")
    assert pid in page.inner_text("main")
    page.click("header nav >> text=Discharged")
    assert pid not in page.inner_text("main")
    page.close()
