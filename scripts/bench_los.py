"""Latency of the remaining-stay estimate per patient, ours beside the baselines, in one run.

For ``--patients`` real eICU demo test stays, each cut at a random hour (the stay so far):

- ``twin.los`` (ours): features of the stay so far + the shipped quantile trees evaluated
  with numpy (``LosModel.estimate``), as the service does;
- the random-forest recipe (the predecessor's model, scikit-learn, fitted here on the train
  split): the same features, then ``RandomForestRegressor.predict`` on the one row;
- LightGBM's own ``Booster.predict`` of a median booster with our settings (fitted here on the
  train split): the library our trees come from;
- the service: ``app.services.los.remaining_stay`` of a patient with 48 h of readings, on a
  fresh SQLite database (grid from the database, estimate, trend), every call uncached.

Prints p50 / p99 (ms) for each and the ratio of each baseline's p50 to ours.

    .venv/bin/python scripts/bench_los.py --data data/eicu_demo/los --patients 300
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twin.los import load_model, stay_features
from twin.los.data import design, load_los


def _timed(fn, items) -> np.ndarray:
    out = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        out.append(time.perf_counter() - t)
    return np.array(out) * 1e3


def _cuts(stays, n: int, rng) -> list[tuple[dict, dict]]:
    picked = rng.choice(len(stays), size=min(n, len(stays)), replace=False)
    cuts = []
    for i in picked:
        s = stays[i]
        h = int(rng.integers(1, s.hours + 1))
        cuts.append(({c: v[:h] for c, v in s.grid.items()}, s.static))
    return cuts


def _service_calls(n: int) -> np.ndarray:
    from app import create_app
    from app.db import init_db
    from app.services import los as los_service
    from app.services.patients import admit_patient, record_observations

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "PREWARM_FORECASTS": False,
                          "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                          "MODEL_URI": f"{tmp}/model", "SECRET_KEY": "bench"})
        with app.app_context():
            init_db()
            from app.schemas import ObservationIn, PatientIn

            p = admit_patient(PatientIn(age=70))
            now = datetime.now(UTC)
            obs = [ObservationIn(time=now - timedelta(hours=h), code=c, value=v, unit=u)
                   for h in range(48, 0, -1) for c, v, u in
                   (("sbp_mmhg", 120 - h / 4, "mm[Hg]"), ("hr_bpm", 80 + h / 8, "/min"),
                    ("rr_per_min", 18, "/min"), ("spo2_pct", 95, "%"))]
            record_observations(p.id, obs)
            los_service.remaining_stay(p.id)  # loads the model once

            def call(_):
                los_service._results.clear()
                los_service.remaining_stay(p.id)

            return _timed(call, range(n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/eicu_demo/los")
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    stays = load_los(args.data)
    test = [s for s in stays if s.split == "test"]
    cuts = _cuts(test, args.patients, rng)
    model = load_model()
    train = design([s for s in stays if s.split == "train"])
    print(f"fitting the baselines on {len(train.y)} train rows ...", file=sys.stderr)
    from sklearn.ensemble import RandomForestRegressor

    from twin.los.fit import fit_quantile

    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=5, max_features=1 / 3,
                                   n_jobs=1, random_state=0).fit(train.x, train.y)
    booster = fit_quantile(train, 0.5)

    def last_row(cut):
        grid, static = cut
        n = len(next(iter(grid.values())))
        return stay_features(grid, static, rows=slice(n - 1, n))

    rows = {
        "twin.los (ours)": _timed(lambda c: model.estimate(*c), cuts),
        "random-forest recipe": _timed(lambda c: forest.predict(last_row(c)), cuts),
        "LightGBM Booster.predict": _timed(lambda c: booster.predict(last_row(c)), cuts),
        "service remaining_stay": _service_calls(min(args.patients, 200)),
    }
    ours = np.percentile(rows["twin.los (ours)"], 50)
    print(f"{'':28s} {'p50 ms':>8s} {'p99 ms':>8s} {'p50 / ours':>10s}")
    for name, ms in rows.items():
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"{name:28s} {p50:8.2f} {p99:8.2f} {p50 / ours:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
