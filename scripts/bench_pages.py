"""Page timings in headless Chromium on the quick-start service (issue 14, "no waits").

Starts gunicorn (app/gunicorn_conf.py, 2 workers) on a fresh SQLite database with the
service's default model bundle (built if missing, as the quick start does), admits
``--patients`` patients with ``--days`` days of 4-hourly bedside sets and a regimen, then
drives Debian's Chromium (playwright) through the pages as a clinician does, round after
round, each round visiting every patient:

- ``ward``: the ward overview;
- ``patient``: the patient page (the plots are separate images: ``load`` waits for them);
- ``record set``: the observation form posted (a new set: data version changes);
- ``what-if``: a what-if posted (a new dose each round: never a cached result);
- ``set regimen``: the regimen form posted (a new dose each round);
- ``what-if ready``: from the what-if post until its result is on the page (computed in the
  background and swapped in by ``live.js``; the baseline computes it in the post).

``--baseline`` runs the same rounds a second time on a service with PREWARM_FORECASTS=0
(forecasts, what-ifs and the ward's forecasts computed on the request path, as before) and
prints the ratio of the p95s.

Per page it prints p50 / p95 of the server's answer (``response``: a GET's response end,
a form post's redirect end or response end) and of the page ready with its images
(``load``), from the Navigation Timing of each page, in ms. Goals: every page p95 <= 1 s,
every form post p95 <= 500 ms.

    .venv/bin/python scripts/bench_pages.py --patients 20 --days 7 --rounds 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

# sibling modules: run as a script, this file has scripts/ first on the import path
from servers import Server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
UNITS = {"sbp_mmhg": "mm[Hg]", "dbp_mmhg": "mm[Hg]", "hr_bpm": "/min", "rr_per_min": "/min",
         "spo2_pct": "%", "on_oxygen": "{bool}", "temp_c": "Cel", "acvpu": "{ACVPU}"}
TIMING = """() => { const n = performance.getEntriesByType('navigation')[0];
  return {response: n.redirectEnd > 0 ? n.redirectEnd : n.responseEnd, load: n.loadEventEnd,
          status: n.responseStatus || 0}; }"""


def api(url: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read() or b"{}")


def seed(url: str, token: str, n: int, days: float, rng: random.Random) -> list[str]:
    """``n`` patients, each with a 10 mg benazepril regimen and ``days`` of 4-hourly sets."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids = []
    for i in range(n):
        p = api(url, token, "POST", "/api/v1/patients",
                {"age": rng.randint(45, 88), "external_id": f"bed-{i + 1:02d}"})
        start = now - timedelta(days=days)
        api(url, token, "PUT", f"/api/v1/patients/{p['id']}/regimen",
            {"dose_mg": 10, "interval_h": 24, "start": start.isoformat(), "confirm": True})
        sbp0 = rng.uniform(120, 170)
        obs = []
        for k in range(int(days * 24 / 4)):
            t = (start + timedelta(hours=4 * k + 1)).isoformat()
            sbp = sbp0 + rng.gauss(0, 8)
            values = {"sbp_mmhg": round(sbp), "dbp_mmhg": round(sbp * 0.6 + rng.gauss(0, 4)),
                      "hr_bpm": round(rng.uniform(65, 100)), "rr_per_min": rng.randint(12, 22),
                      "spo2_pct": rng.randint(93, 99), "on_oxygen": 0,
                      "temp_c": round(rng.uniform(36.4, 37.8), 1), "acvpu": 0}
            obs += [{"time": t, "code": c, "value": v, "unit": UNITS[c]}
                    for c, v in values.items()]
        api(url, token, "POST", f"/api/v1/patients/{p['id']}/observations",
            {"observations": obs})
        ids.append(p["id"])
    return ids


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else float("nan")


def timed(page, samples: dict, name: str) -> None:
    page.wait_for_load_state("load")
    t = page.evaluate(TIMING)
    samples.setdefault(name, []).append(t)
    if t["status"] >= 500:
        raise RuntimeError(f"{name}: HTTP {t['status']}")


def clinician_round(page, url: str, ids: list[str], r: int, samples: dict) -> None:
    """Every page once per patient; doses differ per round so nothing is a cache hit."""
    for i, pid in enumerate(ids):
        page.goto(url + "/")
        timed(page, samples, "ward")
        page.goto(f"{url}/patients/{pid}")
        timed(page, samples, "patient")
        page.fill("#obs-form input[name=sbp_mmhg]", str(130 + (i + r) % 20))
        page.fill("#obs-form input[name=dbp_mmhg]", "80")
        page.fill("#obs-form input[name=hr_bpm]", "82")
        page.click("#obs-form button[type=submit]")
        timed(page, samples, "record set")
        page.fill("#whatif-form input[name=dose_mg]", str(5 + r + i % 5))
        page.click("#whatif-form button[type=submit]")
        timed(page, samples, "what-if")
        t0 = time.perf_counter()  # the result follows in the background
        page.wait_for_selector("section#whatif-result:not([data-pending]) #whatif-table")
        ready = (time.perf_counter() - t0) * 1000 + samples["what-if"][-1]["load"]
        samples.setdefault("what-if ready", []).append({"response": ready, "load": ready})
        page.fill("#regimen-form input[name=dose_mg]", str(10 + (r + i) % 3 * 5))
        page.click("#regimen-form button[type=submit]")
        if page.query_selector("#confirm-form"):
            page.check("#confirm")
            page.click("#confirm-form button[type=submit]")
        timed(page, samples, "set regimen")


def summary(samples: dict) -> dict:
    return {name: {"n": len(rows),
                   **{f"{k}_p{q}_ms": round(percentile([t[k] for t in rows], q), 1)
                      for k in ("response", "load") for q in (50, 95)}}
            for name, rows in samples.items()}


def run(args: argparse.Namespace, model_uri: str, env: dict[str, str]) -> dict:
    """Seed a fresh service (``env`` added to its environment), drive the rounds, and
    return the per-page summary."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    srv = Server(work, model_uri, workers=args.workers, extra_env=env).start()
    try:
        srv.flask("create-user", "bench", "--password-stdin", stdin="bench-pass-1\n")
        token = srv.flask("create-token", "bench", "--scopes", "read,write"
                          ).strip().splitlines()[-1]
        t0 = time.perf_counter()
        ids = seed(srv.url, token, args.patients, args.days, random.Random(14))
        print(f"seeded {len(ids)} patients x {args.days:g} d in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        samples: dict[str, list] = {}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(srv.url + "/login")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", "bench-pass-1")
            page.click("button[type=submit]")
            for r in range(args.rounds):
                clinician_round(page, srv.url, ids, r, samples)
            browser.close()
    finally:
        srv.stop()
    return summary(samples)


def table(out: dict) -> None:
    print(f"{'page':<12} {'n':>4} {'resp p50':>9} {'resp p95':>9} {'load p50':>9} "
          f"{'load p95':>9}   (ms)")
    for name, s in out.items():
        print(f"{name:<12} {s['n']:>4} {s['response_p50_ms']:>9.0f} {s['response_p95_ms']:>9.0f}"
              f" {s['load_p50_ms']:>9.0f} {s['load_p95_ms']:>9.0f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=20)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--baseline", action="store_true",
                    help="also run with PREWARM_FORECASTS=0 (forecasts on the request path) "
                         "and print the ratio")
    args = ap.parse_args()
    from twin.forecast.defaults import default_model_uri, ensure_bundle

    model_uri = os.environ.get("MODEL_URI") or default_model_uri()
    ensure_bundle(model_uri, log=lambda m: print(f"bench: {m}", flush=True))
    modes = {"ours": {}}
    if args.baseline:  # the same service computing forecasts on the request path
        modes["baseline"] = {"PREWARM_FORECASTS": "0"}
    results = {}
    for mode, env in modes.items():
        print(f"== {mode} {env or '(defaults)'}", flush=True)
        results[mode] = run(args, model_uri, env)
        table(results[mode])
    if args.baseline:
        print("ratio baseline / ours (p95, > 1: ours is faster)")
        for name, s in results["ours"].items():
            b = results["baseline"].get(name)
            if b:
                print(f"{name:<12} response {b['response_p95_ms'] / s['response_p95_ms']:6.2f}"
                      f"   load {b['load_p95_ms'] / s['load_p95_ms']:6.2f}")
    if args.json:
        args.json.write_text(json.dumps({"patients": args.patients, "days": args.days,
                                         "rounds": args.rounds, "model_uri": model_uri,
                                         "modes": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
