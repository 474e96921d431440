"""Measurement checks ("re-measure") on a real cohort with injected artefacts.

Real readings of held-out stays are taken as they are; at a fixed, seeded fraction of time
points one artefact a monitor or a tired hand really produces is injected:

* ``sbp_dbp_swap``: systolic and diastolic transposed on entry;
* ``damped_trace``: an over-damped arterial line, SBP and DBP collapsed onto the mean (pulse
  pressure 4-8 mmHg);
* ``transducer_spike``: the transducer moved or flushed, SBP off by 35-60 % for one reading;
* ``hr_doubled``: the monitor double-counts (tall T waves), HR x 2 (kept where still plausible).

Each reading is then checked with :func:`twin.monitoring.checks.check_reading` using only the
readings before it. Recall per artefact = injected readings flagged / injected; precision =
flagged artefacts / all flagged readings; the false-flag rate is flagged clean readings per
1000. The clean readings are real measurements with their own unlabelled artefacts, so the
precision is a lower bound.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from twin.monitoring.checks import check_reading
from twin.realdata.loader import Cohort, Stay

ARTEFACTS = ("sbp_dbp_swap", "damped_trace", "transducer_spike", "hr_doubled")
#: at most this much earlier history (hours) is given to the check
HISTORY_H = 24.0

#: the 99 % prediction interval of each endpoint at time point i, from the points before it
Intervals = Callable[[list["Reading"], int], dict[str, tuple[float, float]]]


@dataclass
class Reading:
    """One time point of one stay: SBP/DBP/HR values and the artefact injected (or None)."""

    stay_id: int
    time_h: float
    values: dict[str, float]
    artefact: str | None = None


def _time_points(stay: Stay) -> list[Reading]:
    """Time points where SBP, DBP and HR were all measured (hours since admission)."""
    eps = ("sbp_mmhg", "dbp_mmhg", "hr_bpm")
    maps = [dict(zip(stay.times[e].tolist(), stay.values[e].tolist(), strict=True))
            for e in eps]
    common = sorted(set(maps[0]) & set(maps[1]) & set(maps[2]))
    return [Reading(stay.stay_id, t, {e: m[t] for e, m in zip(eps, maps, strict=True)})
            for t in common]


def _inject(r: Reading, kind: str, rng: np.random.Generator) -> bool:
    v = r.values
    if kind == "sbp_dbp_swap":
        if v["sbp_mmhg"] - v["dbp_mmhg"] < 10:
            return False
        v["sbp_mmhg"], v["dbp_mmhg"] = v["dbp_mmhg"], v["sbp_mmhg"]
    elif kind == "damped_trace":
        mean = (v["sbp_mmhg"] + 2 * v["dbp_mmhg"]) / 3
        half = rng.uniform(2, 4)
        v["sbp_mmhg"], v["dbp_mmhg"] = mean + half, mean - half
    elif kind == "transducer_spike":
        spiked = v["sbp_mmhg"] * (1 + rng.choice([-1, 1]) * rng.uniform(0.35, 0.6))
        if spiked <= v["dbp_mmhg"] + 10:  # keep it a pure spike, not a swap
            spiked = v["sbp_mmhg"] * (1 + rng.uniform(0.35, 0.6))
        v["sbp_mmhg"] = spiked
    elif kind == "hr_doubled":
        if v["hr_bpm"] * 2 > 250:
            return False
        v["hr_bpm"] *= 2
    r.artefact = kind
    return True


def inject(cohort: Cohort, rate: float = 0.03, seed: int = 2026) -> list[list[Reading]]:
    """Per stay its time points, a ``rate`` fraction of them carrying one artefact each."""
    rng = np.random.default_rng(seed)
    out = []
    for stay in cohort.stays:
        points = _time_points(stay)
        for r in points[1:]:  # the first reading has no history to compare with
            if rng.random() < rate:
                _inject(r, str(rng.choice(ARTEFACTS)), rng)
        out.append(points)
    return out


def _history(points: list[Reading], i: int, ep: str) -> list[tuple[float, float]]:
    t0 = points[i].time_h
    return [(p.time_h, p.values[ep]) for p in points[:i]
            if p.artefact is None and t0 - p.time_h <= HISTORY_H]


def flags_for(points: list[Reading], i: int, intervals: Intervals | None = None) -> list[str]:
    """Every flag rule :func:`check_reading` raises on the readings at time point ``i``."""
    r = points[i]
    band = intervals(points, i) if intervals else {}
    rules: list[str] = []
    for ep, value in r.values.items():
        others = {k: v for k, v in r.values.items() if k != ep}
        rules += [f.rule for f in check_reading(ep, value, others=others,
                                                previous=_history(points, i, ep),
                                                interval_99=band.get(ep), time_h=r.time_h)]
    return rules


def forecast_intervals(model, stay_info: dict[int, tuple[float, str | None]],
                       level: float = 0.99) -> Intervals:
    """99 % intervals of a :class:`twin.forecast.vitals_model.VitalsModel` for SBP/DBP/HR at
    each time point, forecast from the (artefact-free) readings before it."""
    quantile = {}
    for ep in ("sbp_mmhg", "dbp_mmhg", "hr_bpm"):
        leads, grid = model.scores(ep)
        levels = np.arange(1, grid.shape[1] + 1) / (grid.shape[1] + 1)
        quantile[ep] = (leads, np.array([np.interp(level, levels, row) for row in grid]))

    def intervals(points: list[Reading], i: int) -> dict[str, tuple[float, float]]:
        prev = [p for p in points[:i] if p.artefact is None]
        if not prev:
            return {}
        history = {ep: (np.array([p.time_h for p in prev]),
                        np.array([p.values[ep] for p in prev]))
                   for ep in ("sbp_mmhg", "dbp_mmhg", "hr_bpm")}
        now = prev[-1].time_h
        lead = np.array([points[i].time_h - now])
        age, sex = stay_info.get(points[i].stay_id, (None, None))
        pred = model.predict(history, now, lead, age=age, sex=sex)
        out = {}
        for ep, (leads, q) in quantile.items():
            mu, sd = pred[ep]
            half = float(np.interp(lead[0], leads, q)) * float(sd[0])
            out[ep] = (float(mu[0]) - half, float(mu[0]) + half)
        return out

    return intervals


def evaluate(stays: list[list[Reading]], intervals: Intervals | None = None) -> dict:
    """Recall per artefact, precision and the false-flag rate (per 1000 clean readings)."""
    injected = dict.fromkeys(ARTEFACTS, 0)
    caught = dict.fromkeys(ARTEFACTS, 0)
    clean = clean_flagged = 0
    rules_on_clean: dict[str, int] = {}
    for points in stays:
        for i in range(1, len(points)):
            flagged = flags_for(points, i, intervals)
            kind = points[i].artefact
            if kind is None:
                clean += 1
                clean_flagged += bool(flagged)
                for rule in set(flagged):
                    rules_on_clean[rule] = rules_on_clean.get(rule, 0) + 1
            else:
                injected[kind] += 1
                caught[kind] += bool(flagged)
    tp = sum(caught.values())
    flagged_total = tp + clean_flagged
    return {
        "readings": clean + sum(injected.values()),
        "injected": injected,
        "recall": {k: (caught[k] / injected[k] if injected[k] else None) for k in ARTEFACTS},
        "recall_all": tp / max(1, sum(injected.values())),
        "precision": tp / flagged_total if flagged_total else None,
        "false_flags_per_1000_clean": 1000.0 * clean_flagged / max(1, clean),
        "rules_on_clean": dict(sorted(rules_on_clean.items())),
    }


def _table(name: str, r: dict) -> str:
    rec = "  ".join(f"{k} {v:.2f}" if v is not None else f"{k} -"
                    for k, v in r["recall"].items())
    prec = "-" if r["precision"] is None else f"{r['precision']:.2f}"
    return (f"{name}: {r['readings']} time points, {sum(r['injected'].values())} artefacts\n"
            f"  recall {r['recall_all']:.2f} ({rec})\n"
            f"  precision {prec}, false flags {r['false_flags_per_1000_clean']:.1f} "
            "per 1000 clean readings")


def main(argv=None) -> int:
    """``python -m twin evaluate-checks``: exit 0, or 2 on a cohort that cannot be read."""
    import argparse
    import json
    from pathlib import Path

    from twin.realdata.loader import CohortError, load_cohort

    p = argparse.ArgumentParser(prog="python -m twin evaluate-checks",
                                description="Measurement checks on a real cohort with "
                                            "injected artefacts (held-out test split).")
    p.add_argument("--data", required=True, help="a YAIB-layout cohort directory")
    p.add_argument("--rate", type=float, default=0.03,
                   help="fraction of time points given an artefact (default 0.03)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--split", default="test", help="stays scored (default: test)")
    p.add_argument("--forecast-stays", type=int, default=60,
                   help="also score the forecast's 99 %% interval rule on the first N stays "
                        "(about 0.1 s per time point; 0 = skip; default 60)")
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args(argv)
    if not 0 < a.rate < 0.5:
        p.error("--rate must be in (0, 0.5)")
    try:
        cohort = load_cohort(a.data).split(a.split)
    except CohortError as exc:
        print(f"python -m twin evaluate-checks: error: {exc}", file=sys.stderr)
        return 2
    out = {"data": str(a.data), "split": a.split, "stays": len(cohort), "rate": a.rate,
           "seed": a.seed, "results": {}}
    out["results"]["physiology"] = evaluate(inject(cohort, a.rate, a.seed))
    print(_table("physiology checks (pressure consistency, jumps)", out["results"]["physiology"]))
    if a.forecast_stays > 0:
        from twin.forecast.vitals_model import VitalsModel

        sub = Cohort(cohort.directory, cohort.stays[:a.forecast_stays], cohort.rejected,
                     cohort.counts, cohort.units)
        info = {s.stay_id: (s.age, s.sex) for s in sub.stays}
        model = VitalsModel.load()
        out["forecast_stays"] = len(sub)
        out["model_version"] = model.version
        same = evaluate(inject(sub, a.rate, a.seed))
        both = evaluate(inject(sub, a.rate, a.seed), forecast_intervals(model, info))
        out["results"]["physiology_subset"] = same
        out["results"]["with_forecast_99"] = both
        print(_table(f"same checks, first {len(sub)} stays", same))
        print(_table(f"+ outside the forecast's 99 % interval, first {len(sub)} stays", both))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0
