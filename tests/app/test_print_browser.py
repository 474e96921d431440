"""The ward prints as a handover sheet (headless Chromium, print media): the table, no
controls, a note that the sheet may be out of date; a real PDF comes out."""

from __future__ import annotations

import pytest

from tests.app.test_browser import browser, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_ward_prints_as_a_handover_sheet(browser, server, tmp_path):  # noqa: F811
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url + "/login")
    page.fill("input[name=username]", "dr-who")
    page.fill("input[name=password]", "tardis-1963")
    page.click("button[type=submit]")
    page.emulate_media(media="print")
    shown = page.evaluate("""() => ({
        table: getComputedStyle(document.querySelector('table#ward')).display,
        forms: [...document.querySelectorAll('form, button, .button')]
                 .filter(e => getComputedStyle(e).display !== 'none').length,
        footer: getComputedStyle(document.querySelector('footer'), '::before').content})""")
    assert shown["table"] == "table" and shown["forms"] == 0, shown
    assert "Printed handover sheet" in shown["footer"]
    pdf = page.pdf(path=str(tmp_path / "ward.pdf"))
    assert pdf[:4] == b"%PDF" and len(pdf) > 2000
    page.close()
