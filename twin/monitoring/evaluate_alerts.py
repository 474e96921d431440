"""NEWS2 and our status / alert rule measured on real ICU stays (issue 13, item 7).

    python -m twin evaluate-alerts --data DIR [--json OUT] [--folds K]

``DIR`` is any YAIB-layout cohort (``dyn.parquet``, ``sta.parquet``, ``outc.parquet``), read by
the project's loader (:func:`twin.realdata.loader.load_cohort`: its plausible-range rules and
counts). The task is read from ``outc.parquet``: one label per stay -> ``mortality24`` (the
first 24 h against death in the ICU); a label per stay and hour -> ``sepsis`` (each hour
against sepsis onset within the next 6 h).

Hourly observation sets (documented in docs/monitoring.md):

* At each whole hour ``h`` of a stay, every NEWS2 parameter is its latest reading at or before
  ``h``, carried forward at most :data:`CARRY_H` hours; consciousness is not recorded in these
  cohorts and counts as Alert; supplemental oxygen is FiO2 > 21 % (carried forward likewise;
  no FiO2 = room air); SpO2 scale 1. A parameter still missing scores 0 points (the
  set's partial score).
* NEWS2 is :func:`twin.monitoring.news2.partial_score` of that set; the status is
  :func:`twin.monitoring.status.assess` at ``h`` with that NEWS2, the SBP / HR readings up
  to ``h`` and the NEWS2 history (no forecast: the rules on the forecast are not measured).

Rules compared, each an hourly score with an alert on it (:class:`Lifecycle`; an alarm is
one raised alert):

* ``news2``: NEWS2 >= 5 (the RCP's urgent trigger), the plain lifecycle: raised the first
  hour at threshold, resolved after :data:`CLEAR_H` consecutive hours below it.
* ``status``: the status level of ``assess`` (stable 0, watch 1, urgent 2, critical 3) at or
  above urgent, plain lifecycle.
* ``ours``: ``NEWS2 + w_sbp * sbp_falling + w_hr * hr_rising + w_s3 * single_parameter_3
  + w_rise * news2_rising`` (the status reasons added to the score; monotone in each) with a
  lifecycle (confirmation hours, hysteresis); weights, threshold and lifecycle chosen on the
  ``train`` split of the project's fixed patient-level split (:mod:`twin.realdata.split`) as
  the most events caught at an alarm rate no higher than NEWS2 >= 5's there, and reported on
  the held-out stays (``calibration`` + ``test``). ``--folds K`` adds out-of-fold figures.

Metrics: AUROC (rank-based, ties averaged; per stay on the maximum over the first 24 h for
``mortality24``, per hour for ``sepsis``), event recall (deaths with an alarm in the first
24 h; onsets with an alarm raised from 6 h before onset up to onset; ``covered``: with the
score at threshold then) and alarms (raised alerts) per patient-hour.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.monitoring import news2 as n2
from twin.monitoring.status import assess
from twin.realdata.loader import CohortError, Stay, load_cohort
from twin.realdata.split import split_fraction

#: hours a reading is carried forward into later hourly sets
CARRY_H = 6.0
#: an open alert resolves after this many consecutive hours below the threshold
CLEAR_H = 2
#: the first hours that the mortality24 task scores
FIRST_H = 24.0
#: sepsis: an onset is caught by an alarm raised from this many hours before it up to it
ONSET_WINDOW_H = 6.0
#: loader endpoint -> NEWS2 parameter
PARAMETER_OF = {"resp_per_min": "respiratory_rate_per_min", "spo2_pct": "spo2_pct",
                "sbp_mmhg": "sbp_mmhg", "hr_bpm": "hr_bpm", "temp_c": "temperature_c"}
ROOM_AIR_FIO2_PCT = 21.0
STATUS_SCORE = {"stable": 0, "watch": 1, "urgent": 2, "critical": 3, "no-data": 0}
TUNE_SPLIT = ("train",)
REPORT_SPLITS = ("calibration", "test")
#: the grid "ours" is tuned on (train split only)
WEIGHTS = ("w_sbp", "w_hr", "w_s3", "w_rise")
GRID = {"w_sbp": (0, 1, 2, 3), "w_hr": (0, 1, 2), "w_s3": (0, 1, 2), "w_rise": (0, 1, 2, 3),
        "threshold": tuple(range(4, 10)), "confirm_h": (1, 2), "hysteresis": (0, 1)}
NEWS2_THRESHOLD = 5


@dataclass
class StayHours:
    """One stay's hourly features and labels."""

    stay_id: int
    split: str
    hours: np.ndarray            # whole hours scored
    news2: np.ndarray            # partial NEWS2 per hour
    single3: np.ndarray          # a 3 in one parameter
    sbp_falling: np.ndarray
    hr_rising: np.ndarray
    news2_rising: np.ndarray
    status: np.ndarray           # STATUS_SCORE of assess's level
    label: np.ndarray            # per hour (sepsis) or one value (mortality24)
    onset_h: float | None = None
    missing: dict[str, int] = field(default_factory=dict)


def auroc(scores, labels) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic with ties counted half."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def read_labels(directory) -> tuple[str, pd.DataFrame]:
    """(task, outcomes) from ``outc.parquet``: ``mortality24`` (one boolean label per stay,
    column ``label``) or ``sepsis`` (columns ``time``, ``label`` per stay and hour)."""
    path = Path(directory) / "outc.parquet"
    try:
        outc = pd.read_parquet(path)
    except Exception as exc:
        raise CohortError(f"unreadable parquet: {exc}", file=str(path)) from exc
    for col in ("stay_id", "label"):
        if col not in outc.columns:
            raise CohortError("missing column", file=str(path), column=col)
    lab = outc["label"]
    if lab.isna().any():
        raise CohortError("missing labels", file=str(path), column="label")
    values = set(pd.unique(lab.astype(float)))
    if not values <= {0.0, 1.0}:
        raise CohortError("labels are not binary (a regression task such as los is not an "
                          "alert outcome)", file=str(path), column="label")
    hourly = outc["stay_id"].duplicated().any()
    if hourly:
        if "time" not in outc.columns:
            raise CohortError("several labels per stay need a time", file=str(path),
                              column="time")
        t = outc["time"]
        hours = (t.dt.total_seconds().to_numpy(float) / 3600.0
                 if pd.api.types.is_timedelta64_dtype(t) else t.to_numpy(float))
        return "sepsis", pd.DataFrame({"stay_id": outc["stay_id"].astype(int).to_numpy(),
                                       "h": hours, "label": lab.astype(bool).to_numpy()})
    return "mortality24", pd.DataFrame({"stay_id": outc["stay_id"].astype(int).to_numpy(),
                                        "label": lab.astype(bool).to_numpy()})


def _carried(stay: Stay, endpoint: str, hours: np.ndarray) -> np.ndarray:
    """The latest value at or before each hour, within CARRY_H; NaN otherwise."""
    t = stay.times.get(endpoint, np.empty(0))
    v = stay.values.get(endpoint, np.empty(0))
    out = np.full(len(hours), np.nan)
    if not len(t):
        return out
    idx = np.searchsorted(t, hours + 1e-9, side="right") - 1
    ok = (idx >= 0) & (hours - t[np.maximum(idx, 0)] <= CARRY_H + 1e-9)
    out[ok] = v[idx[ok]]
    return out


def hourly(stay: Stay, hours: np.ndarray) -> dict[str, np.ndarray]:
    """NEWS2, its single-parameter-3 flag and the status reasons at each hour."""
    params = {p: _carried(stay, ep, hours) for ep, p in PARAMETER_OF.items()}
    fio2 = _carried(stay, "fio2_pct", hours)
    sbp = list(zip(stay.times.get("sbp_mmhg", []), stay.values.get("sbp_mmhg", []),
                   strict=True))
    hr = list(zip(stay.times.get("hr_bpm", []), stay.values.get("hr_bpm", []), strict=True))
    n = len(hours)
    out = {k: np.zeros(n, int) for k in ("news2", "single3", "sbp_falling", "hr_rising",
                                         "news2_rising", "status")}
    history: list[tuple[float, float]] = []
    missing = dict.fromkeys(PARAMETER_OF.values(), 0)
    for i, h in enumerate(hours):
        kw = {p: (None if np.isnan(x[i]) else float(x[i])) for p, x in params.items()}
        for p, x in kw.items():
            missing[p] += x is None
        obs = n2.ObservationSet(**kw, consciousness="A",
                                supplemental_oxygen=bool(fio2[i] > ROOM_AIR_FIO2_PCT))
        total, pts, _ = n2.partial_score(obs)
        single3 = any(v == 3 for v in pts.values())
        t = n2.trigger(total, single3)
        score = n2.News2(score=total, components=pts, risk=n2.risk_level(total, single3),
                         single_parameter_3=single3, clinical_response=n2.RESPONSES[t],
                         monitoring_interval_h=n2.MONITORING_INTERVAL_H[t])
        history.append((float(h), float(total)))
        series = {"sbp_mmhg": [p for p in sbp if p[0] <= h + 1e-9],
                  "hr_bpm": [p for p in hr if p[0] <= h + 1e-9], "news2": history}
        st = assess(now_h=float(h), series=series, news2=score, last_set_h=float(h))
        rules = {r.rule for r in st.reasons}
        out["news2"][i] = total
        out["single3"][i] = single3
        out["sbp_falling"][i] = "sbp_falling" in rules
        out["hr_rising"][i] = "hr_rising" in rules
        out["news2_rising"][i] = "news2_rising" in rules
        out["status"][i] = STATUS_SCORE[st.level]
    out["missing"] = missing
    return out


def build(directory) -> tuple[str, list[StayHours], dict[str, int], dict]:
    """Load the cohort and compute every stay's hourly features."""
    cohort = load_cohort(directory)
    task, labels = read_labels(directory)
    excluded = {"no_outcome": 0, "no_valid_vitals": 0, "no_hours": 0}
    by_stay = {sid: g for sid, g in labels.groupby("stay_id")} if task == "sepsis" else None
    death = dict(zip(labels["stay_id"], labels["label"], strict=True)) \
        if task == "mortality24" else None
    out = []
    for stay in cohort.stays:
        if not any(len(stay.values[ep]) for ep in PARAMETER_OF if ep in stay.values):
            excluded["no_valid_vitals"] += 1
            continue
        onset = None
        if task == "mortality24":
            if stay.stay_id not in death:
                excluded["no_outcome"] += 1
                continue
            hours = np.arange(0.0, min(FIRST_H, np.floor(stay.end_h)) + 1.0)
            label = np.array([death[stay.stay_id]])
        else:
            g = by_stay.get(stay.stay_id)
            if g is None:
                excluded["no_outcome"] += 1
                continue
            g = g.sort_values("h")
            hours, label = g["h"].to_numpy(float), g["label"].to_numpy(bool)
            if label.any():
                # YAIB: the label is True from 6 h before onset (clipped at admission)
                first, last = hours[label][0], hours[label][-1]
                onset = first + ONSET_WINDOW_H if first > 0 else max(last - ONSET_WINDOW_H,
                                                                      0.0)
        if not len(hours):
            excluded["no_hours"] += 1
            continue
        f = hourly(stay, hours)
        out.append(StayHours(stay.stay_id, stay.split, hours, f["news2"], f["single3"],
                             f["sbp_falling"], f["hr_rising"], f["news2_rising"], f["status"],
                             label, onset,
                             f["missing"]))
    return task, out, excluded, cohort.counts


def risk(s: StayHours, rule: str, w: dict | None = None) -> np.ndarray:
    """The hourly risk score of ``rule`` (``news2``, ``status`` or ``ours`` with weights)."""
    if rule == "news2":
        return s.news2.astype(float)
    if rule == "status":
        return s.status.astype(float)
    return (s.news2 + w["w_sbp"] * s.sbp_falling + w["w_hr"] * s.hr_rising
            + w["w_s3"] * s.single3 + w["w_rise"] * s.news2_rising).astype(float)


@dataclass(frozen=True)
class Lifecycle:
    """How an hourly score raises and resolves an alert at ``threshold``: raised after
    ``confirm_h`` consecutive hours at or above it (none open); resolved after ``clear_h``
    consecutive hours below ``threshold - hysteresis``."""

    confirm_h: int = 1
    hysteresis: float = 0.0
    clear_h: int = CLEAR_H

    def raised(self, score: np.ndarray, threshold: float) -> np.ndarray:
        """Hour indices at which an alert is raised."""
        if not len(score) or score.max() < threshold:
            return np.empty(0, int)
        out, open_, run, below = [], False, 0, 0
        for i, x in enumerate(score):
            if not open_:
                run = run + 1 if x >= threshold else 0
                if run >= self.confirm_h:
                    out.append(i)
                    open_, below = True, 0
            else:
                below = below + 1 if x < threshold - self.hysteresis else 0
                if below >= self.clear_h:
                    open_, run = False, 0
        return np.array(out, int)

    def as_dict(self) -> dict:
        return {"confirm_h": self.confirm_h, "hysteresis": self.hysteresis,
                "clear_h": self.clear_h}


#: the lifecycle NEWS2 >= 5 is measured with (raised at once, resolved after 2 h below)
PLAIN = Lifecycle()


def alerts(on: np.ndarray, clear_h: int = CLEAR_H) -> np.ndarray:
    """Hour indices at which an alert is raised for a boolean condition (plain lifecycle)."""
    return Lifecycle(clear_h=clear_h).raised(np.asarray(on, float), 0.5)


def operating(stays: list[StayHours], task: str, scores: list[np.ndarray],
              threshold: float, lifecycle: Lifecycle = PLAIN) -> dict:
    """Event recall and alarms (raised alerts) per patient-hour at ``threshold``."""
    n_alarms, hours, events, caught, hours_on = 0, 0, 0, 0, 0
    alarmed, stays_n, covered = 0, 0, 0
    for s, r in zip(stays, scores, strict=True):
        on = r >= threshold
        raised = lifecycle.raised(r, threshold)
        stays_n += 1
        alarmed += bool(len(raised))
        n_alarms += len(raised)
        hours += len(r)
        hours_on += int(on.sum())
        if task == "mortality24":
            if s.label[0]:
                events += 1
                caught += bool(len(raised))
                covered += bool(len(raised))
        elif s.onset_h is not None:
            events += 1
            t = s.hours[raised] if len(raised) else np.empty(0)
            caught += bool(((t >= s.onset_h - ONSET_WINDOW_H) & (t <= s.onset_h)).any())
            window = (s.hours >= s.onset_h - ONSET_WINDOW_H) & (s.hours <= s.onset_h)
            covered += bool(on[window].any())
    return {"threshold": threshold, "lifecycle": lifecycle.as_dict(),
            "events": events, "caught": caught,
            "recall": caught / events if events else float("nan"),
            # sepsis: onsets with the score at or above the threshold at some hour of the
            # window (an alert open then, raised in the window or before)
            "covered": covered,
            "alarms": n_alarms, "patient_hours": hours,
            "alarms_per_patient_hour": n_alarms / hours if hours else float("nan"),
            "hours_in_alarm_fraction": hours_on / hours if hours else float("nan"),
            "stays_alarmed_fraction": alarmed / stays_n if stays_n else float("nan")}


def auroc_of(stays: list[StayHours], task: str, scores: list[np.ndarray]) -> float:
    if task == "mortality24":
        return auroc([r.max() for r in scores], [s.label[0] for s in stays])
    return auroc(np.concatenate(scores), np.concatenate([s.label for s in stays]))


def tune(stays: list[StayHours], task: str) -> tuple[dict, dict]:
    """Weights and threshold of ``ours`` on ``stays``: most events caught at an alarm rate
    no higher than NEWS2 >= 5's; ties: lower alarm rate, then higher AUROC."""
    budget = operating(stays, task, [risk(s, "news2") for s in stays], NEWS2_THRESHOLD)
    best, best_key = None, None
    lifecycles = [Lifecycle(c, float(h)) for c in GRID["confirm_h"] for h in GRID["hysteresis"]]
    for ws in itertools.product(*(GRID[k] for k in WEIGHTS)):
        w = dict(zip(WEIGHTS, ws, strict=True))
        scores = [risk(s, "ours", w) for s in stays]
        auc = auroc_of(stays, task, scores)
        for t, lc in itertools.product(GRID["threshold"], lifecycles):
            op = operating(stays, task, scores, t, lc)
            if op["alarms_per_patient_hour"] > budget["alarms_per_patient_hour"] + 1e-12:
                continue
            simpler = -(sum(ws) + lc.confirm_h + lc.hysteresis)
            key = (op["caught"], -op["alarms_per_patient_hour"], auc, simpler)
            if best_key is None or key > best_key:
                best, best_key = {**w, "threshold": t, "lifecycle": lc,
                                  "tuning": {**op, "auroc": auc}}, key
    return best, budget


def _sum_ops(ops: list[dict]) -> dict:
    keys = ("events", "caught", "covered", "alarms", "patient_hours")
    out = {k: sum(o[k] for o in ops) for k in keys}
    out["recall"] = out["caught"] / out["events"] if out["events"] else float("nan")
    out["alarms_per_patient_hour"] = (out["alarms"] / out["patient_hours"]
                                      if out["patient_hours"] else float("nan"))
    on = sum(o["hours_in_alarm_fraction"] * o["patient_hours"] for o in ops)
    out["hours_in_alarm_fraction"] = on / out["patient_hours"] if out["patient_hours"] else 0
    return out


def crossfit(stays: list[StayHours], task: str, folds: int) -> dict:
    """Out-of-fold figures: fold ``int(split_fraction(stay_id) * folds)`` (the hash of the
    fixed split); ``ours`` tuned on the other folds and scored on each fold, summed."""
    fold_of = [int(split_fraction(s.stay_id) * folds) for s in stays]
    ours, news, configs, oof_scores, oof_stays = [], [], [], [], []
    for k in range(folds):
        fit = [s for s, f in zip(stays, fold_of, strict=True) if f != k]
        part = [s for s, f in zip(stays, fold_of, strict=True) if f == k]
        if not part or not any(_has_event(s) for s in fit):
            continue
        best, _ = tune(fit, task)
        w = {key: best[key] for key in WEIGHTS}
        scores = [risk(s, "ours", w) for s in part]
        ours.append(operating(part, task, scores, best["threshold"], best["lifecycle"]))
        news.append(operating(part, task, [risk(s, "news2") for s in part], NEWS2_THRESHOLD))
        configs.append({**w, "threshold": best["threshold"],
                        "lifecycle": best["lifecycle"].as_dict(), "stays": len(part)})
        oof_scores += scores
        oof_stays += part
    return {"folds": folds, "configs": configs,
            "ours": {"auroc_pooled": auroc_of(oof_stays, task, oof_scores), **_sum_ops(ours)},
            "news2": {"auroc": auroc_of(oof_stays, task, [risk(s, "news2") for s in oof_stays]),
                      **_sum_ops(news)}}


def evaluate(directory, folds: int = 0) -> dict:
    """The evaluation document (see the module docstring); ``folds`` > 1 adds out-of-fold
    figures (``crossfit``)."""
    task, stays, excluded, counts = build(directory)
    if not stays:
        raise CohortError("no stay with vital signs and an outcome", file=str(directory))
    train = [s for s in stays if s.split in TUNE_SPLIT]
    held = [s for s in stays if s.split in REPORT_SPLITS]
    tuned_on = "train"
    if not train or not held or not any(_has_event(s) for s in train):
        train = held = stays   # a small cohort: tuned and reported on every stay
        tuned_on = "all (too few stays or events to split)"
    best, budget = tune(train, task)
    w = {k: best[k] for k in WEIGHTS}
    lc = best["lifecycle"]
    results = {}
    for name, part in (("held_out", held), ("all", stays)):
        res = {}
        for rule, key, thr, kw, life in (
                ("news2", "news2", NEWS2_THRESHOLD, None, PLAIN),
                ("status", "status", 2, None, PLAIN),
                ("ours", "ours", best["threshold"], w, lc),
                # NEWS2 >= 5 with ours' lifecycle: how much of the gain is the lifecycle
                ("news2", "news2_ours_lifecycle", NEWS2_THRESHOLD, None, lc)):
            scores = [risk(s, rule, kw) for s in part]
            res[key] = {"auroc": auroc_of(part, task, scores),
                        **operating(part, task, scores, thr, life)}
        # NEWS2 at the threshold whose alarm rate is closest to, and not above, ours
        news_scores = [risk(s, "news2") for s in part]
        ours_rate = res["ours"]["alarms_per_patient_hour"]
        matched = None   # the NEWS2 threshold catching most at an alarm rate <= ours
        for t in range(1, 21):
            op = operating(part, task, news_scores, t, lc)
            if op["alarms_per_patient_hour"] <= ours_rate + 1e-12 and (
                    matched is None or op["caught"] > matched["caught"]):
                matched = op
        res["news2_at_ours_rate"] = matched
        res["stays"] = len(part)
        results[name] = res
    missing = {p: sum(s.missing[p] for s in stays) for p in PARAMETER_OF.values()}
    return {
        "data": str(directory), "task": task, "stays": len(stays),
        "results": {**results["held_out"], "all_stays": results["all"]},
        "operating_point": {
            "rule": "ours", "formula": "news2 + w_sbp*sbp_falling + w_hr*hr_rising "
                                       "+ w_s3*single_parameter_3 + w_rise*news2_rising "
                                       ">= threshold",
            **w, "threshold": best["threshold"], "lifecycle": lc.as_dict(),
            "tuned_on": tuned_on,
            "reported_on": "calibration+test" if held is not stays else "all",
            "alarm_budget": "NEWS2 >= 5 alarms per patient-hour on the tuning stays",
            "budget_alarms_per_patient_hour": budget["alarms_per_patient_hour"],
            "tuning": best["tuning"],
            "news2_threshold": NEWS2_THRESHOLD, "status_threshold": "urgent",
            "carry_forward_h": CARRY_H, "alert_clears_after_h": CLEAR_H,
            "onset_window_h": ONSET_WINDOW_H if task == "sepsis" else None,
            "first_hours": FIRST_H if task == "mortality24" else None,
        },
        "excluded": {**excluded, "stays_without_valid_vitals": counts.get(
            "stays_without_valid_vitals", 0)},
        "hour_sets_missing_parameter": missing,
        "patient_hours": int(sum(len(s.hours) for s in stays)),
        **({"crossfit": crossfit(stays, task, folds)} if folds > 1 else {}),
    }


def _has_event(s: StayHours) -> bool:
    return bool(s.label.any())


def _table(doc: dict) -> str:
    op = doc["operating_point"]
    lines = [f"{doc['task']}: {doc['stays']} stays ({doc['data']}); ours = {op['formula']} "
             f"with w_sbp={op['w_sbp']} w_hr={op['w_hr']} w_s3={op['w_s3']} "
             f"w_rise={op['w_rise']} "
             f"threshold={op['threshold']}, alert raised after {op['lifecycle']['confirm_h']} h, "
             f"hysteresis {op['lifecycle']['hysteresis']:g} (tuned on {op['tuned_on']})"]
    for part, res in (("held-out (" + op["reported_on"] + ")", doc["results"]),
                      ("all stays", doc["results"]["all_stays"])):
        lines.append(f"{part}: {res['stays']} stays")
        lines.append(f"  {'rule':26s} {'AUROC':>6s} {'recall':>14s} {'alarms/pt-h':>12s} "
                     f"{'h in alarm':>10s} {'pts alarmed':>11s} {'covered':>7s}")
        rows = [("NEWS2 >= 5", res["news2"]), ("status >= urgent", res["status"]),
                (f"ours >= {op['threshold']}", res["ours"]),
                ("NEWS2 >= 5, ours' cycle", {**res["news2_ours_lifecycle"],
                                             "auroc": float("nan")})]
        if res.get("news2_at_ours_rate"):
            m = res["news2_at_ours_rate"]
            rows.append((f"NEWS2 >= {m['threshold']}, ours' cycle",
                         {**m, "auroc": float("nan")}))
        for name, r in rows:
            auc = "" if np.isnan(r["auroc"]) else f"{r['auroc']:.3f}"
            lines.append(f"  {name:26s} {auc:>6s} {r['caught']:4d}/{r['events']:<4d}"
                         f"({r['recall']:.2f}) {r['alarms_per_patient_hour']:12.4f} "
                         f"{r['hours_in_alarm_fraction']:10.3f} "
                         f"{r['stays_alarmed_fraction']:11.3f} {r['covered']:7d}")
    cf = doc.get("crossfit")
    if cf:
        lines.append(f"out of fold ({cf['folds']} patient folds, tuned on the others):")
        for name, r in (("NEWS2 >= 5", cf["news2"]), ("ours (per fold)", cf["ours"])):
            lines.append(f"  {name:26s} {r['caught']:4d}/{r['events']:<4d}({r['recall']:.2f})"
                         f" covered {r['covered']:4d} alarms/pt-h "
                         f"{r['alarms_per_patient_hour']:.4f}")
    return "\n".join(lines)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer | np.bool_):
        return x.item()
    return x


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m twin evaluate-alerts",
                                description="NEWS2 and our status / alert rule on a real "
                                            "cohort (YAIB layout): AUROC, recall, alarms")
    p.add_argument("--data", required=True, help="cohort directory (dyn/sta/outc.parquet)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--folds", type=int, default=0,
                   help="also tune and score 'ours' out of fold over K patient folds (slow)")
    args = p.parse_args(argv)
    try:
        doc = _jsonable(evaluate(args.data, folds=args.folds))
    except (CohortError, OSError, ValueError, KeyError) as exc:
        print(f"{p.prog}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(_table(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
