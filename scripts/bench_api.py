"""Load test of the API through gunicorn on loopback.

Starts the service (gunicorn, app/gunicorn_conf.py) on a free port with a fresh SQLite
database and the service's default model bundle (built if missing, as the quick start does),
admits a patient with observations and a regimen, then measures:

- closed loop: N keep-alive clients, each sending its next request when the last one
  returns, for D seconds, on the forecast JSON and on the forecast PNG: the saturation
  throughput (with 50 clients the p99 here is mostly queueing: Little's law);
- open loop: the same N clients sending at a fixed total rate (``--rate``, default 300/s,
  the throughput goal), latency counted from each request's *scheduled* time, so a slow
  server cannot hide its queue (no coordinated omission);
- uncached PNG: each request asks a new coverage, so interval and plot are recomputed
  (the patient's fit is memoised by the twin: it depends only on the data);
- cold PNG after new data: an observation is posted, then the PNG asked for at once, so
  the patient is refitted and the plot rendered on the request path (the background
  warm-up of the writing worker may race it).

Prints requests/s, p50, p99 and errors for each.

    .venv/bin/python scripts/bench_api.py --duration 60 --clients 50
    .venv/bin/python scripts/bench_api.py --persistence   # a seconds-to-build test bundle

MODEL_URI overrides the bundle.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# sibling modules: run as a script, this file has scripts/ first on the import path
from persistence_bundle import build_persistence_bundle
from servers import Server


def request(conn: http.client.HTTPConnection, method: str, path: str, token: str,
            body: dict | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def seed(port: int, token: str) -> str:
    """A patient with a regimen and a day of BP readings; returns its id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    status, body = request(conn, "POST", "/api/v1/patients", token, {"age": 64})
    assert status == 201, body
    pid = json.loads(body)["id"]
    now = datetime.now(UTC)
    request(conn, "PUT", f"/api/v1/patients/{pid}/regimen", token,
            {"dose_mg": 10, "interval_h": 24, "start": (now - timedelta(days=1)).isoformat()})
    obs = [{"time": (now - timedelta(hours=h)).isoformat(), "code": c, "value": v,
            "unit": "mm[Hg]"} for h in (22, 14, 6, 1) for c, v in (("sbp_mmhg", 150 + h / 2),
                                                                    ("dbp_mmhg", 94))]
    status, body = request(conn, "POST", f"/api/v1/patients/{pid}/observations", token,
                           {"observations": obs})
    assert status == 201, body
    conn.close()
    return pid


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else float("nan")


def _get(conn: http.client.HTTPConnection, port: int, path: str, token: str
         ) -> tuple[bool, http.client.HTTPConnection]:
    """One GET; (200?, the connection to use next: a new one after a broken one)."""
    try:
        status, _ = request(conn, "GET", path, token)
        return status == 200, conn
    except (OSError, http.client.HTTPException):
        conn.close()
        return False, http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def load(port: int, token: str, path: str, clients: int, duration_s: float,
         rate: float | None = None) -> dict:
    """``clients`` threads, each on its own keep-alive connection, for ``duration_s``.

    Closed loop (``rate`` None): each client sends its next request when the last returns;
    latency from sending. Open loop: request k of all clients together is due at
    start + k / rate (client i sends i, i + clients, ...); latency from the due time."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = time.perf_counter() + (0.2 if rate else 0.0)
    stop_at = start + duration_s

    def due_times(i: int):
        if rate is None:
            while time.perf_counter() < stop_at:
                yield time.perf_counter()
        else:
            yield from (start + k / rate for k in range(i, int(duration_s * rate), clients))

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for due in due_times(i):
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            ok, conn = _get(conn, port, path, token)
            latencies[i].append(time.perf_counter() - due)
            errors[i] += 0 if ok else 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    flat = [x for row in latencies for x in row]
    return {"requests": len(flat), "rps": len(flat) / elapsed,
            "p50_ms": percentile(flat, 50) * 1000, "p99_ms": percentile(flat, 99) * 1000,
            "errors": sum(errors)}


def after_write(port: int, token: str, writer: str, pid: str, n: int) -> dict:
    """n times: post one new observation, then time the PNG asked for at once."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    lat, errors = [], 0
    for i in range(n):
        obs = {"time": datetime.now(UTC).isoformat(), "code": "sbp_mmhg",
               "value": 140 + i % 7, "unit": "mm[Hg]"}
        status, _ = request(conn, "POST", f"/api/v1/patients/{pid}/observations", writer,
                            {"observations": [obs]})
        errors += status != 201
        t0 = time.perf_counter()
        status, _ = request(conn, "GET", f"/api/v1/patients/{pid}/forecast.png", token)
        lat.append(time.perf_counter() - t0)
        errors += status != 200
        time.sleep(1.0)  # let the writer's background warm-up finish before the next write
    return {"requests": n, "rps": n / sum(lat), "p50_ms": percentile(lat, 50) * 1000,
            "p99_ms": percentile(lat, 99) * 1000, "errors": errors}


def uncached(port: int, token: str, pid: str, n: int) -> dict:
    """Sequential PNGs, each with a new coverage (forecast + plot recomputed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    lat, errors = [], 0
    for i in range(n):
        coverage = 0.5 + 0.45 * (i + 1) / (n + 1)
        t0 = time.perf_counter()
        status, _ = request(conn, "GET", f"/api/v1/patients/{pid}/forecast.png?"
                            f"coverage={coverage:.6f}", token)
        lat.append(time.perf_counter() - t0)
        errors += status != 200
    return {"requests": n, "rps": n / sum(lat), "p50_ms": percentile(lat, 50) * 1000,
            "p99_ms": percentile(lat, 99) * 1000, "errors": errors}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients")
    ap.add_argument("--uncached", type=int, default=30, help="uncached PNG requests")
    ap.add_argument("--rate", type=float, default=300.0, help="open-loop requests/s")
    ap.add_argument("--persistence", action="store_true",
                    help="a seconds-to-build persistence-only bundle instead of the default")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    ap.add_argument("--threads", type=int,
                    default=int(os.environ.get("GUNICORN_THREADS", 4)))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    model_uri = os.environ.get("MODEL_URI")
    if not model_uri and args.persistence:
        print("building a small persistence bundle ...", flush=True)
        model_uri = build_persistence_bundle(work / "model")
    elif not model_uri:
        from twin.forecast.defaults import default_model_uri, ensure_bundle

        model_uri = default_model_uri()
        ensure_bundle(model_uri, log=lambda m: print(f"bench: {m}", flush=True))
    srv = Server(work, model_uri, workers=args.workers, threads=args.threads).start()
    try:
        token = srv.flask("create-token", "bench", "--scopes", "read").strip().splitlines()[-1]
        writer = srv.flask("create-token", "bench-w", "--scopes", "read,write")
        writer = writer.strip().splitlines()[-1]
        pid = seed(srv.port, writer)
        print(f"gunicorn {args.workers} workers x {args.threads} threads on {srv.url}; "
              f"model {model_uri}; {args.clients} clients x {args.duration:g} s", flush=True)
        results = {}
        for name, path in (("forecast_json", f"/api/v1/patients/{pid}/forecast"),
                           ("forecast_png", f"/api/v1/patients/{pid}/forecast.png")):
            load(srv.port, token, path, min(args.clients, 8), 2.0)  # warm every worker
            results[name] = load(srv.port, token, path, args.clients, args.duration)
            results[f"{name}_at_{args.rate:g}_rps"] = load(srv.port, token, path, args.clients,
                                                           args.duration, args.rate)
        results["png_cached_1_client"] = load(srv.port, token,
                                               f"/api/v1/patients/{pid}/forecast.png", 1,
                                               min(args.duration, 10.0))
        results["png_uncached"] = uncached(srv.port, token, pid, args.uncached)
        results["png_after_write"] = after_write(srv.port, token, writer, pid, args.uncached)
        for name, r in results.items():
            print(f"{name:26s} {r['requests']:7d} req  {r['rps']:8.1f} req/s  "
                  f"p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                  f"errors {r['errors']}", flush=True)
        print(json.dumps(results))
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
