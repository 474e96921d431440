"""Screenshots of the ward, the patient page and a what-if for ``docs/screenshots``.

Starts the quick-start service (gunicorn, the default model bundle, a fresh SQLite database),
admits a few synthetic patients with three days of 4-hourly sets (``bench_pages.seed``) and
one whose blood pressure falls (148/88 to 96/58 over 40 h, HR 104 to 124), then takes the
pages in Debian's headless Chromium once their forecasts are current.

    .venv/bin/python scripts/screenshots.py --out docs/screenshots
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_pages import ARGS, CHROMIUM, UNITS, api, seed
from servers import Server

#: (hours ago, SBP, DBP, HR, RR, SpO2, temperature) of the deteriorating patient
FALLING = [(40, 148, 88, 104, 18, 96, 38.2), (28, 138, 80, 110, 20, 95, 38.4),
           (12, 118, 70, 118, 22, 94, 38.6), (1, 96, 58, 124, 24, 93, 38.9)]


def falling_patient(url: str, token: str) -> str:
    """An infected 58-year-old whose BP falls while the HR rises."""
    now = datetime.now(UTC).replace(microsecond=0)
    p = api(url, token, "POST", "/api/v1/patients",
            {"age": 58, "external_id": "bed-07", "infected": True,
             "infection_onset": (now - timedelta(hours=48)).isoformat()})
    obs = []
    for h, sbp, dbp, hr, rr, spo2, temp in FALLING:
        t = (now - timedelta(hours=h)).isoformat()
        values = {"sbp_mmhg": sbp, "dbp_mmhg": dbp, "hr_bpm": hr, "rr_per_min": rr,
                  "spo2_pct": spo2, "on_oxygen": 0, "temp_c": temp, "acvpu": 0}
        obs += [{"time": t, "code": c, "value": v, "unit": UNITS[c]} for c, v in values.items()]
    api(url, token, "POST", f"/api/v1/patients/{p['id']}/observations", {"observations": obs})
    return p["id"]


def current(page) -> None:
    """Wait until the page's forecast section is current (live.js swaps it in)."""
    page.wait_for_selector("section#forecast:not([data-pending]) #forecast-summary")
    page.wait_for_load_state("networkidle")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from twin.forecast.defaults import default_model_uri, ensure_bundle

    model_uri = os.environ.get("MODEL_URI") or default_model_uri()
    ensure_bundle(model_uri, log=lambda m: print(f"screenshots: {m}", flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    srv = Server(Path(tempfile.mkdtemp(prefix="screenshots-")), model_uri).start()
    try:
        srv.flask("create-user", "dr-shot", "--password-stdin", stdin="screen-shot-1\n")
        token = srv.flask("create-token", "dr-shot", "--scopes", "read,write"
                          ).strip().splitlines()[-1]
        seed(srv.url, token, 5, 3, random.Random(7))
        pid = falling_patient(srv.url, token)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(srv.url + "/login")
            page.fill("input[name=username]", "dr-shot")
            page.fill("input[name=password]", "screen-shot-1")
            page.click("button[type=submit]")
            page.goto(f"{srv.url}/patients/{pid}")
            current(page)
            page.goto(srv.url + "/")
            page.wait_for_selector("table#ward tr[data-patient]:not([data-pending])")
            page.screenshot(path=str(args.out / "ward.png"), full_page=True)
            page.goto(f"{srv.url}/patients/{pid}")
            current(page)
            bottom = page.locator("#regimen-card").bounding_box()["y"]  # down to the forms
            page.screenshot(path=str(args.out / "patient.png"), full_page=True,
                            clip={"x": 0, "y": 0, "width": 1280, "height": bottom})
            page.fill("#whatif-form input[name=dose_mg]", "5")
            page.click("#whatif-form button[type=submit]")
            page.wait_for_selector("section#whatif-result:not([data-pending]) #whatif-table")
            page.wait_for_load_state("networkidle")
            page.locator("section#whatif-result").screenshot(path=str(args.out / "whatif.png"))
            browser.close()
    finally:
        srv.stop()
    for name in ("ward.png", "patient.png", "whatif.png"):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
