"""Status rules (twin.monitoring.status): each rule at its threshold +- epsilon, the level is the
most severe reason, stale data never "stable", and the deteriorating patient is "urgent"
with the falling SBP named."""

from __future__ import annotations

import dataclasses

import pytest

from twin.monitoring.news2 import News2, ObservationSet, score
from twin.monitoring.status import (
    DEFAULT_THRESHOLDS,
    LEVELS,
    SEVERITY,
    Reason,
    Status,
    StatusThresholds,
    assess,
    most_severe,
    trend,
)

EPS = 0.1
#: a complete set scoring 0: without one the status is never "stable" (NEWS2 not scored)
CALM = score(ObservationSet(16, 97, 1, False, 120, 70, "A", 37.0))
TIMES = (0.0, 13.0, 27.0, 40.0)
SBP, DBP, HR = (148, 138, 118, 96), (88, 80, 70, 58), (104, 110, 117, 124)


def deteriorating() -> dict[str, list[tuple[float, float]]]:
    return {"sbp_mmhg": list(zip(TIMES, SBP, strict=True)),
            "dbp_mmhg": list(zip(TIMES, DBP, strict=True)),
            "hr_bpm": list(zip(TIMES, HR, strict=True))}


def flat(value: float, n: int = 6, step: float = 4.0, end: float = 40.0):
    return [(end - step * (n - 1 - i), float(value)) for i in range(n)]


def normal_set(**kw) -> ObservationSet:
    base = dict(respiratory_rate_per_min=16, spo2_pct=97, supplemental_oxygen=False,
                sbp_mmhg=125, hr_bpm=72, consciousness="A", temperature_c=36.8)
    base.update(kw)
    return ObservationSet(**base)


def news2(score_: int, **kw) -> News2:
    interval = {0: 12.0}.get(score_, 4.0 if score_ <= 4 else (1.0 if score_ <= 6 else 0.0))
    risk = "low" if score_ <= 4 else ("medium" if score_ <= 6 else "high")
    return News2(score=score_, components=kw.pop("components", {}), risk=risk,
                 monitoring_interval_h=kw.pop("monitoring_interval_h", interval), **kw)


def rules(status: Status) -> set[str]:
    return {r.rule for r in status.reasons}


def reason(status: Status, rule: str) -> Reason:
    return next(r for r in status.reasons if r.rule == rule)


# --- levels -----------------------------------------------------------------------------

def test_levels_and_severity_order():
    assert LEVELS == ("critical", "urgent", "watch", "stable", "no-data")
    assert sorted(LEVELS, key=SEVERITY.__getitem__) == list(LEVELS)
    assert most_severe(["watch", "critical", "stable"]) == "critical"
    assert most_severe([]) == "no-data"


def test_no_readings_is_no_data():
    s = assess(now_h=10.0, series={})
    assert s.level == "no-data" and rules(s) == {"no_data"}
    assert s.as_dict() == {"level": "no-data", "reasons": [
        {"rule": "no_data", "level": "no-data", "message": "no observations recorded",
         "values": {}}]}


def test_stable_patient_explains_itself():
    series = {"sbp_mmhg": flat(122), "hr_bpm": flat(70)}
    s = assess(now_h=40.0, series=series, news2=score(normal_set()), last_set_h=39.0)
    assert s.level == "stable"
    assert rules(s) == {"no_concern"}
    assert "NEWS2 0" in s.reasons[0].message


def test_level_is_most_severe_reason_and_reasons_sorted():
    s = assess(now_h=40.0, series=deteriorating(), news2=news2(7), last_set_h=40.0,
               open_alerts=[("sbp_low", "watch")])
    assert s.level == "critical"
    assert [r.level for r in s.reasons] == sorted((r.level for r in s.reasons),
                                                  key=SEVERITY.__getitem__)
    assert {"news2_high", "sbp_falling", "alert:sbp_low"} <= rules(s)


def test_every_reason_names_rule_level_and_values():
    s = assess(now_h=60.0, series=deteriorating(), news2=news2(6), last_set_h=40.0,
               forecast={"sbp_mmhg": [{"h": 6, "median": 92, "lower": 80, "upper": 104}]})
    assert len(s.reasons) >= 3
    for r in s.reasons:
        assert r.rule and r.level in LEVELS and r.message and r.values


# --- the deteriorating patient ------------------------------------------------------------

def test_deteriorating_patient_is_urgent_with_falling_sbp():
    s = assess(now_h=40.0, series=deteriorating())
    assert SEVERITY[s.level] <= SEVERITY["urgent"]
    r = reason(s, "sbp_falling")
    assert r.level == "urgent"
    assert "SBP falling" in r.message and "148 -> 96" in r.message and "40 h" in r.message
    assert r.values["first"] == 148 and r.values["last"] == 96
    assert r.values["robust_fall_mmhg"] >= 20


def test_deteriorating_patient_with_its_news2_set():
    # 96/58, HR 124, on air, RR 22, SpO2 95, alert, 37.9: NEWS2 = 2 (SBP) + 2 (HR) + 2 (RR) + 1
    obs = ObservationSet(respiratory_rate_per_min=22, spo2_pct=95, supplemental_oxygen=False,
                         sbp_mmhg=96, hr_bpm=124, consciousness="A", temperature_c=37.9)
    n = score(obs)
    assert n.score == 7
    s = assess(now_h=40.0, series=deteriorating(), news2=n, last_set_h=40.0)
    assert s.level == "critical" and {"news2_high", "sbp_falling"} <= rules(s)


# --- NEWS2 rules ----------------------------------------------------------------------------

@pytest.mark.parametrize(("total", "level", "rule"), [
    (0, "stable", "no_concern"), (1, "watch", "news2_low"), (4, "watch", "news2_low"),
    (5, "urgent", "news2_medium"), (6, "urgent", "news2_medium"),
    (7, "critical", "news2_high"), (12, "critical", "news2_high")])
def test_news2_bands(total, level, rule):
    s = assess(now_h=10.0, series={"sbp_mmhg": flat(120, end=10.0)}, news2=news2(total),
               last_set_h=10.0)
    assert s.level == level and rule in rules(s)
    if rule != "no_concern":
        assert reason(s, rule).values["score"] == total


def test_news2_single_parameter_3_is_urgent_and_named():
    obs = normal_set(consciousness="V")
    n = score(obs)
    assert n.score == 3 and n.single_parameter_3
    s = assess(now_h=1.0, news2=n, last_set_h=1.0)
    assert s.level == "urgent"
    r = reason(s, "news2_single_parameter")
    assert "consciousness" in r.message and r.values["parameters"] == "consciousness"


def test_incomplete_set_is_never_stable():
    s = assess(now_h=1.0, series={"sbp_mmhg": [(1.0, 120.0)]},
               news2_missing=("respiratory_rate_per_min", "consciousness"))
    assert s.level == "watch"
    r = reason(s, "news2_incomplete")
    assert "respiration rate" in r.message and "consciousness" in r.message


# --- forecast rules -------------------------------------------------------------------------

def _fc(lower: float, upper: float, h: float = 12.0):
    return {"sbp_mmhg": [{"h": 1.0, "median": 120.0, "lower": 110.0, "upper": 130.0},
                         {"h": h, "median": (lower + upper) / 2, "lower": lower,
                          "upper": upper}]}


@pytest.mark.parametrize(("lower", "fires"), [(90.0 - EPS, True), (90.0, False),
                                               (90.0 + EPS, False)])
def test_forecast_lower_edge_below_90(lower, fires):
    s = assess(now_h=5.0, series={"sbp_mmhg": flat(120, end=5.0)}, last_set_h=5.0, news2=CALM,
               forecast=_fc(lower, 140.0))
    assert ("forecast_sbp_low" in rules(s)) is fires
    assert s.level == ("urgent" if fires else "stable")
    if fires:
        r = reason(s, "forecast_sbp_low")
        assert r.values["lower"] == lower and r.values["h"] == 12.0 and "90 %" in r.message


@pytest.mark.parametrize(("upper", "fires"), [(180.0 + EPS, True), (180.0, False),
                                               (180.0 - EPS, False)])
def test_forecast_upper_edge_above_180(upper, fires):
    s = assess(now_h=5.0, series={"sbp_mmhg": flat(150, end=5.0)}, last_set_h=5.0, news2=CALM,
               forecast=_fc(120.0, upper))
    assert ("forecast_sbp_high" in rules(s)) is fires
    assert s.level == ("watch" if fires else "stable")


@pytest.mark.parametrize(("h", "fires"), [(24.0, True), (24.0 + EPS, False)])
def test_forecast_only_within_24h(h, fires):
    s = assess(now_h=5.0, series={"sbp_mmhg": flat(120, end=5.0)}, last_set_h=5.0, news2=CALM,
               forecast=_fc(80.0, 130.0, h=h))
    assert ("forecast_sbp_low" in rules(s)) is fires


# --- trend rules ----------------------------------------------------------------------------

def _step(before: float, after: float, n: int = 8, end: float = 24.0):
    """n readings every 3 h ending at ``end``: the first half at ``before``, then ``after``."""
    return [(end - 3.0 * (n - 1 - i), before if i < n - n // 2 else after) for i in range(n)]


@pytest.mark.parametrize(("fall", "fires"), [(20.0 + EPS, True), (20.0, True),
                                              (20.0 - EPS, False)])
def test_sbp_fall_absolute_threshold(fall, fires):
    # earlier level 200: 20 mmHg is 10 %, so only the absolute threshold can fire
    s = assess(now_h=24.0, series={"sbp_mmhg": _step(200.0, 200.0 - fall)}, news2=CALM)
    assert ("sbp_falling" in rules(s)) is fires
    assert s.level == ("urgent" if fires else "stable")


@pytest.mark.parametrize(("frac", "fires"), [(0.15 + 0.001, True), (0.15, True),
                                              (0.15 - 0.001, False)])
def test_sbp_fall_relative_threshold(frac, fires):
    # earlier level 100: 15 % is 15 mmHg, below the absolute threshold
    s = assess(now_h=24.0, series={"sbp_mmhg": _step(100.0, 100.0 * (1 - frac))})
    assert ("sbp_falling" in rules(s)) is fires


def test_sbp_fall_robust_to_one_noisy_reading():
    pts = [(t, 120.0 + (t % 2)) for t in range(0, 24, 3)] + [(24.0, 70.0)]
    s = assess(now_h=24.0, series={"sbp_mmhg": pts})
    assert "sbp_falling" not in rules(s)
    tr = trend(pts, 24.0)
    assert tr is not None and tr.robust_fall < 20 and tr.last == 70.0
    # one noisy high reading early on does not make a fall either
    pts = [(0.0, 190.0)] + [(t, 120.0) for t in range(3, 25, 3)]
    assert "sbp_falling" not in rules(assess(now_h=24.0, series={"sbp_mmhg": pts}))


def test_sbp_rise_is_not_a_fall():
    s = assess(now_h=24.0, series={"sbp_mmhg": _step(100.0, 140.0)})
    assert "sbp_falling" not in rules(s)


def test_trend_needs_min_readings_within_lookback():
    th = DEFAULT_THRESHOLDS
    three = [(0.0, 150.0), (12.0, 120.0), (24.0, 90.0)]
    assert trend(three, 24.0) is None
    assert "sbp_falling" not in rules(assess(now_h=24.0, series={"sbp_mmhg": three}))
    # the deteriorating patient: 2 readings in the last 24 h, 2 more within 48 h
    assert trend(deteriorating()["sbp_mmhg"], 40.0).n == 4
    # once the oldest reading is beyond the 48 h lookback, only three remain
    assert trend(deteriorating()["sbp_mmhg"], 48.0 + EPS) is None
    assert th.trend_window_h == 24 and th.trend_max_lookback_h == 48


def test_readings_after_now_are_ignored():
    pts = _step(150.0, 100.0, end=24.0)
    assert "sbp_falling" not in rules(assess(now_h=10.0, series={"sbp_mmhg": pts}))


@pytest.mark.parametrize(("rise", "fires"), [(20.0 + EPS, True), (20.0, True),
                                              (20.0 - EPS, False)])
def test_hr_rise_threshold(rise, fires):
    s = assess(now_h=24.0, series={"hr_bpm": _step(80.0, 80.0 + rise),
                                   "sbp_mmhg": _step(120.0, 120.0)}, news2=CALM)
    assert ("hr_rising" in rules(s)) is fires
    assert s.level == ("watch" if fires else "stable")


@pytest.mark.parametrize(("sbp_fall", "level"), [(10.0 + EPS, "urgent"), (10.0, "urgent"),
                                                  (10.0 - EPS, "watch")])
def test_hr_rise_urgent_when_sbp_also_falling(sbp_fall, level):
    s = assess(now_h=24.0, series={"hr_bpm": _step(80.0, 110.0),
                                   "sbp_mmhg": _step(180.0, 180.0 - sbp_fall)})
    r = reason(s, "hr_rising")
    assert r.level == level
    assert "sbp_falling" not in rules(s)   # 10 mmHg of 180 is below both SBP thresholds
    if level == "urgent":
        assert "SBP falls" in r.message


# --- overdue ----------------------------------------------------------------------------

@pytest.mark.parametrize(("age", "fires"), [(12.0 - EPS, False), (12.0, False),
                                             (12.0 + EPS, True)])
def test_overdue_after_monitoring_interval(age, fires):
    s = assess(now_h=100.0, series={"sbp_mmhg": [(100.0 - age, 120.0)]},
               news2=score(normal_set()), last_set_h=100.0 - age)
    assert ("overdue" in rules(s)) is fires
    assert s.level == ("watch" if fires else "stable")
    if fires:
        assert reason(s, "overdue").values == {"age_h": round(age, 2), "interval_h": 12.0}


@pytest.mark.parametrize(("age", "fires"), [(0.5 - EPS, False), (0.5 + EPS, True)])
def test_overdue_continuous_floor(age, fires):
    s = assess(now_h=10.0, news2=news2(8), last_set_h=10.0 - age)
    assert ("overdue" in rules(s)) is fires
    assert s.level == "critical"


def test_overdue_uses_the_news2_interval():
    s = assess(now_h=10.0, news2=news2(3), last_set_h=10.0 - 4.0 - EPS)   # 4-hourly
    assert "overdue" in rules(s)
    assert reason(s, "overdue").values["interval_h"] == 4.0


def test_stale_data_never_stable():
    # the only reading two months old: no trend, no NEWS2; the default interval applies
    s = assess(now_h=24.0 * 60, series={"sbp_mmhg": [(0.0, 165.0)]})
    assert s.level == "watch" and "overdue" in rules(s)
    assert "1440 h ago" in reason(s, "overdue").message


def test_last_set_defaults_to_latest_reading():
    s = assess(now_h=30.0, series={"sbp_mmhg": [(1.0, 120.0)], "hr_bpm": [(17.0, 70.0)]})
    assert "overdue" in rules(s) and reason(s, "overdue").values["age_h"] == 13.0


# --- open alerts ------------------------------------------------------------------------

def test_open_alerts_map_through():
    s = assess(now_h=1.0, series={"sbp_mmhg": [(1.0, 120.0)]},
               open_alerts=[("news2_high", "critical"), ("spo2_low", "watch")])
    assert s.level == "critical"
    assert {"alert:news2_high", "alert:spo2_low"} <= rules(s)


def test_open_alert_without_readings():
    s = assess(now_h=1.0, open_alerts=[("manual", "urgent")])
    assert s.level == "urgent"


def test_open_alert_bad_level():
    with pytest.raises(ValueError, match="level"):
        assess(now_h=1.0, open_alerts=[("x", "severe")])


# --- thresholds ---------------------------------------------------------------------------

def test_thresholds_are_configurable():
    th = dataclasses.replace(DEFAULT_THRESHOLDS, sbp_fall_mmhg=40.0, sbp_fall_fraction=0.5)
    assert "sbp_falling" not in rules(assess(now_h=40.0, series=deteriorating(),
                                             thresholds=th))
    th = dataclasses.replace(DEFAULT_THRESHOLDS, news2_medium_level="critical")
    assert assess(now_h=1.0, news2=news2(5), last_set_h=1.0, thresholds=th).level == "critical"


@pytest.mark.parametrize("kw", [{"news2_high_level": "severe"}, {"sbp_fall_mmhg": -1.0},
                                {"trend_min_readings": 2}, {"forecast_horizon_h": float("nan")},
                                {"overdue_level": "no-data"}])
def test_bad_thresholds(kw):
    with pytest.raises(ValueError, match="StatusThresholds"):
        StatusThresholds(**kw)


# --- NEWS2 history ----------------------------------------------------------------------

@pytest.mark.parametrize(("rise", "fires"), [(2.0 + EPS, True), (2.0, True), (2.0 - EPS, False)])
def test_news2_rising(rise, fires):
    s = assess(now_h=24.0, series={"news2": _step(1.0, 1.0 + rise),
                                   "sbp_mmhg": _step(120.0, 120.0)}, news2=CALM)
    assert ("news2_rising" in rules(s)) is fires
    assert s.level == ("watch" if fires else "stable")
    if fires:
        r = reason(s, "news2_rising")
        assert "NEWS2 rising" in r.message and r.values["robust_rise_points"] >= 2


def test_news2_rising_robust_to_one_high_set():
    pts = [(float(t), 1.0) for t in range(0, 24, 3)] + [(24.0, 6.0)]
    assert "news2_rising" not in rules(assess(now_h=24.0, series={"news2": pts}))


def test_readings_without_any_bedside_set_are_never_stable():
    s = assess(now_h=5.0, series={"creatinine_umol_per_l": [(4.9, 400.0)]})
    assert s.level == "watch" and "news2_incomplete" in rules(s)


@pytest.mark.parametrize(("points", "level", "rule"), [
    ({"hr_bpm": 3}, "urgent", "news2_partial_single_parameter"),
    ({"hr_bpm": 2, "sbp_mmhg": 3}, "urgent", "news2_partial_medium"),
    ({"hr_bpm": 3, "sbp_mmhg": 3, "respiratory_rate_per_min": 3}, "critical",
     "news2_partial_high"),
    ({"hr_bpm": 1}, "watch", "news2_incomplete")])
def test_an_incomplete_sets_points_are_a_lower_bound(points, level, rule):
    missing = tuple(p for p in ("respiratory_rate_per_min", "spo2_pct", "supplemental_oxygen",
                                "sbp_mmhg", "hr_bpm", "consciousness", "temperature_c")
                    if p not in points)
    s = assess(now_h=5.0, series={"hr_bpm": [(5.0, 134.0)]}, last_set_h=5.0,
               news2_missing=missing, news2_partial=points)
    assert s.level == level and rule in rules(s)


def test_an_incomplete_set_is_overdue_on_the_interval_of_its_points():
    # points 7 -> continuous monitoring (floored): 3 h old is overdue, not "due in 12 h"
    s = assess(now_h=5.0, series={"hr_bpm": [(2.0, 134.0)]}, last_set_h=2.0,
               news2_missing=("consciousness",),
               news2_partial={"hr_bpm": 3, "sbp_mmhg": 3, "respiratory_rate_per_min": 1})
    assert "overdue" in rules(s)
