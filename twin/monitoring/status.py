"""A patient's status that explains itself: pure rules over NEWS2, the forecast, trends,
overdue observations and open alerts (issue 13, item 3).

``assess(...)`` returns a :class:`Status`: ``level`` is the most severe of its reasons, and
every :class:`Reason` names its ``rule``, its ``level``, a message in clinical words and the
values it rests on. The levels, most severe first, are :data:`LEVELS`.

Rules (defaults in :class:`StatusThresholds`, documented in docs/monitoring.md):

* ``news2_high`` (score >= 7) -> critical; ``news2_medium`` (5-6) -> urgent;
  ``news2_single_parameter`` (a 3 in one parameter) -> urgent; ``news2_low`` (1-4) -> watch;
  ``news2_incomplete`` (a set with parameters missing) -> watch (never scored as normal).
* ``forecast_sbp_low``: the lower edge of the forecast's 90 % interval below SBP 90 mmHg
  within 24 h -> urgent; ``forecast_sbp_high``: the upper edge above 180 mmHg -> watch.
* ``sbp_falling``: the recent SBP readings are >= 20 mmHg or >= 15 % below the earlier ones in
  the trend window -> urgent; ``hr_rising``: HR >= 20 /min above -> watch, urgent when SBP is
  also falling by >= 10 mmHg (robustly); ``news2_rising``: the NEWS2 history (series
  ``"news2"``, when given) up >= 2 points -> watch. Trends are robust to one noisy reading:
  the change must hold with any one reading left out (see :func:`trend`).
* ``overdue``: the last set is older than the NEWS2 monitoring interval (12 h without a score;
  0 = "continuous" counts as 0.5 h) -> watch. Stale data are never "stable".
* ``alert:<rule>``: each open alert maps through at its own level.
* ``no_data``: no reading at all -> "no-data"; ``no_concern`` -> "stable" when nothing fired.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from twin.monitoring.news2 import MONITORING_INTERVAL_H, PARAMETERS, trigger

if TYPE_CHECKING:  # pragma: no cover
    from twin.monitoring.news2 import News2

#: status levels, most severe first
LEVELS: tuple[str, ...] = ("critical", "urgent", "watch", "stable", "no-data")
#: level -> rank; 0 is the most severe (sort ascending to list the sickest first)
SEVERITY: dict[str, int] = {level: i for i, level in enumerate(LEVELS)}
#: display names of the NEWS2 parameters and endpoints in messages
LABELS = {
    "respiratory_rate_per_min": "respiration rate", "spo2_pct": "SpO2",
    "supplemental_oxygen": "supplemental oxygen", "sbp_mmhg": "SBP", "hr_bpm": "HR",
    "consciousness": "consciousness", "temperature_c": "temperature", "dbp_mmhg": "DBP",
    "map_mmhg": "MAP",
}


def most_severe(levels: Iterable[str]) -> str:
    """The most severe of ``levels`` ("no-data" when empty)."""
    return min(levels, key=SEVERITY.__getitem__, default="no-data")


@dataclass(frozen=True)
class Reason:
    """Why a status is what it is: the rule, its level, a clinical message, the values."""

    rule: str
    level: str
    message: str
    values: dict[str, float | str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"rule": self.rule, "level": self.level, "message": self.message,
                "values": dict(self.values)}


@dataclass(frozen=True)
class Status:
    """The level (most severe reason) and the reasons, most severe first."""

    level: str
    reasons: tuple[Reason, ...] = ()

    @property
    def rank(self) -> int:
        return SEVERITY[self.level]

    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.reasons)

    def as_dict(self) -> dict:
        return {"level": self.level, "reasons": [r.as_dict() for r in self.reasons]}


@dataclass(frozen=True)
class StatusThresholds:
    """The status rules' thresholds; every default is documented in docs/monitoring.md."""

    # NEWS2 (RCP chart 4 triggers)
    news2_high_level: str = "critical"          # score >= 7
    news2_medium_level: str = "urgent"          # score 5-6
    news2_single_parameter_level: str = "urgent"  # a 3 in one parameter
    news2_low_level: str = "watch"              # score 1-4
    news2_incomplete_level: str = "watch"       # parameters missing: never "normal"
    # forecast (90 % interval)
    forecast_horizon_h: float = 24.0
    forecast_sbp_low_mmhg: float = 90.0         # lower edge strictly below -> urgent
    forecast_sbp_low_level: str = "urgent"
    forecast_sbp_high_mmhg: float = 180.0       # upper edge strictly above -> watch
    forecast_sbp_high_level: str = "watch"
    # trends
    trend_window_h: float = 24.0                # readings of the last 24 h ...
    trend_min_readings: int = 4                 # ... at least this many, reaching back ...
    trend_max_lookback_h: float = 48.0          # ... up to 48 h when charting is sparse
    sbp_fall_mmhg: float = 20.0                 # fall >= this (robust) -> sbp_falling
    sbp_fall_fraction: float = 0.15             # or fall >= 15 % of the earlier level
    sbp_fall_level: str = "urgent"
    hr_rise_per_min: float = 20.0               # rise >= this (robust) -> hr_rising
    hr_rise_level: str = "watch"
    hr_rise_with_sbp_fall_mmhg: float = 10.0    # ... and SBP falling >= this: hr_rise_with_
    hr_rise_with_sbp_fall_level: str = "urgent"  # ... sbp_fall_level instead
    news2_rise_points: float = 2.0              # NEWS2 history (series "news2") up >= this
    news2_rise_level: str = "watch"
    # overdue observations
    default_interval_h: float = 12.0            # without a NEWS2: the low-risk minimum
    continuous_floor_h: float = 0.5             # "continuous" (0 h) counts as 30 min
    overdue_level: str = "watch"

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if name.endswith("_level"):
                if value not in LEVELS[:4]:
                    raise ValueError(f"StatusThresholds.{name}: must be one of "
                                     f"{', '.join(LEVELS[:4])}, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"StatusThresholds.{name}: must be a finite number >= 0, "
                                 f"got {value!r}")
        if self.trend_min_readings < 3:
            raise ValueError("StatusThresholds.trend_min_readings: must be >= 3 (a trend "
                             "robust to one noisy reading needs three)")


DEFAULT_THRESHOLDS = StatusThresholds()


@dataclass(frozen=True)
class Trend:
    """The change of an endpoint between its earlier and recent readings in the window.

    ``change`` = median(recent) - median(earlier), where the last half of the readings
    (rounded down) are the recent ones. ``robust_rise`` / ``robust_fall`` are the smallest
    rise / fall over every way of leaving one reading out (0 if some way shows none), and
    ``robust_fall_fraction`` likewise for the fall relative to the earlier median: one noisy
    reading can never make a trend on its own.
    """

    change: float
    robust_rise: float
    robust_fall: float
    robust_fall_fraction: float
    earlier: float
    recent: float
    first: float
    last: float
    span_h: float
    n: int


def _split(v: np.ndarray) -> tuple[float, float]:
    k = len(v) // 2
    return float(np.median(v[: len(v) - k])), float(np.median(v[len(v) - k:]))


def window_points(points: Sequence[tuple[float, float]], now_h: float,
                  th: StatusThresholds = DEFAULT_THRESHOLDS) -> list[tuple[float, float]]:
    """The readings a trend looks at: those of the last ``trend_window_h`` up to ``now_h``,
    reaching back to ``trend_max_lookback_h`` for ``trend_min_readings`` when sparse."""
    pts = sorted((float(t), float(v)) for t, v in points
                 if t <= now_h + 1e-9 and v is not None and math.isfinite(v))
    window = [p for p in pts if p[0] >= now_h - th.trend_window_h - 1e-9]
    need = th.trend_min_readings - len(window)
    if need > 0:
        older = [p for p in pts if now_h - th.trend_max_lookback_h - 1e-9 <= p[0]
                 < now_h - th.trend_window_h - 1e-9]
        window = older[-need:] + window
    return window


def trend(points: Sequence[tuple[float, float]], now_h: float,
          th: StatusThresholds = DEFAULT_THRESHOLDS) -> Trend | None:
    """The :class:`Trend` of ``points`` ([(time_h, value)]) at ``now_h``; None with fewer
    than ``trend_min_readings`` readings in the window."""
    window = window_points(points, now_h, th)
    if len(window) < th.trend_min_readings:
        return None
    v = np.array([p[1] for p in window])
    earlier, recent = _split(v)
    rises, falls, fractions = [], [], []
    for i in range(len(v)):
        e, r = _split(np.delete(v, i))
        rises.append(r - e)
        falls.append(e - r)
        fractions.append((e - r) / e if e > 0 else 0.0)
    return Trend(change=recent - earlier, robust_rise=max(0.0, min(rises)),
                 robust_fall=max(0.0, min(falls)), robust_fall_fraction=max(0.0, min(fractions)),
                 earlier=earlier, recent=recent, first=float(v[0]), last=float(v[-1]),
                 span_h=window[-1][0] - window[0][0], n=len(v))


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


def _trend_values(tr: Trend) -> dict[str, float | str]:
    return {"earlier_median": round(tr.earlier, 2), "recent_median": round(tr.recent, 2),
            "first": tr.first, "last": tr.last, "span_h": round(tr.span_h, 2),
            "readings": tr.n}


def _news2_reasons(news2: News2, th: StatusThresholds, age_h: float | None) -> list[Reason]:
    values: dict[str, float | str] = {"score": news2.score, "risk": news2.risk}
    if age_h is not None:
        values["set_age_h"] = round(age_h, 2)
    out = []
    if news2.score >= 7:
        out.append(Reason("news2_high", th.news2_high_level,
                          f"NEWS2 {news2.score} (high risk, >= 7): emergency assessment", values))
    elif news2.score >= 5:
        out.append(Reason("news2_medium", th.news2_medium_level,
                          f"NEWS2 {news2.score} (medium risk, 5-6): urgent review", values))
    elif news2.score >= 1:
        out.append(Reason("news2_low", th.news2_low_level,
                          f"NEWS2 {news2.score} (low risk, 1-4): nurse assessment", values))
    threes = [p for p, v in news2.components.items() if v == 3]
    if news2.single_parameter_3 or threes:
        names = ", ".join(LABELS.get(p, p) for p in threes) or "one parameter"
        out.append(Reason("news2_single_parameter", th.news2_single_parameter_level,
                          f"NEWS2 scores 3 in {names}: urgent review",
                          {**values, "parameters": ",".join(threes)}))
    return out


def _forecast_reasons(forecast: dict[str, list[dict]], th: StatusThresholds) -> list[Reason]:
    rows = [r for r in forecast.get("sbp_mmhg", ()) if 0 <= float(r["h"])
            <= th.forecast_horizon_h + 1e-9]
    out = []
    if not rows:
        return out
    low = min(rows, key=lambda r: float(r["lower"]))
    if float(low["lower"]) < th.forecast_sbp_low_mmhg:
        out.append(Reason(
            "forecast_sbp_low", th.forecast_sbp_low_level,
            f"SBP forecast: 90 % interval reaches {_fmt(float(low['lower']))} mmHg "
            f"(< {_fmt(th.forecast_sbp_low_mmhg)}) at +{_fmt(float(low['h']))} h "
            f"(median {_fmt(float(low['median']))})",
            {"lower": float(low["lower"]), "median": float(low["median"]), "h": float(low["h"]),
             "threshold": th.forecast_sbp_low_mmhg}))
    high = max(rows, key=lambda r: float(r["upper"]))
    if float(high["upper"]) > th.forecast_sbp_high_mmhg:
        out.append(Reason(
            "forecast_sbp_high", th.forecast_sbp_high_level,
            f"SBP forecast: 90 % interval reaches {_fmt(float(high['upper']))} mmHg "
            f"(> {_fmt(th.forecast_sbp_high_mmhg)}) at +{_fmt(float(high['h']))} h "
            f"(median {_fmt(float(high['median']))})",
            {"upper": float(high["upper"]), "median": float(high["median"]),
             "h": float(high["h"]), "threshold": th.forecast_sbp_high_mmhg}))
    return out


def _trend_reasons(series: dict[str, list[tuple[float, float]]], now_h: float,
                   th: StatusThresholds) -> list[Reason]:
    out = []
    sbp = trend(series.get("sbp_mmhg", ()), now_h, th)
    hr = trend(series.get("hr_bpm", ()), now_h, th)
    if sbp is not None and (sbp.robust_fall >= th.sbp_fall_mmhg - 1e-9
                            or sbp.robust_fall_fraction >= th.sbp_fall_fraction - 1e-9):
        fall = sbp.earlier - sbp.recent
        out.append(Reason(
            "sbp_falling", th.sbp_fall_level,
            f"SBP falling {_fmt(fall)} mmHg ({100 * fall / sbp.earlier:.0f} %) over "
            f"{_fmt(sbp.span_h)} h ({_fmt(sbp.first)} -> {_fmt(sbp.last)})",
            {**_trend_values(sbp), "fall_mmhg": round(fall, 2),
             "robust_fall_mmhg": round(sbp.robust_fall, 2),
             "robust_fall_pct": round(100 * sbp.robust_fall_fraction, 2),
             "threshold_mmhg": th.sbp_fall_mmhg,
             "threshold_pct": 100 * th.sbp_fall_fraction}))
    if hr is not None and hr.robust_rise >= th.hr_rise_per_min - 1e-9:
        with_fall = sbp is not None and sbp.robust_fall >= th.hr_rise_with_sbp_fall_mmhg - 1e-9
        rise = hr.recent - hr.earlier
        msg = (f"HR rising {_fmt(rise)} /min over {_fmt(hr.span_h)} h "
               f"({_fmt(hr.first)} -> {_fmt(hr.last)})")
        if with_fall:
            msg += f" while SBP falls {_fmt(sbp.earlier - sbp.recent)} mmHg"
        values = {**_trend_values(hr), "rise_per_min": round(rise, 2),
                  "robust_rise_per_min": round(hr.robust_rise, 2),
                  "threshold_per_min": th.hr_rise_per_min}
        if sbp is not None:
            values["sbp_robust_fall_mmhg"] = round(sbp.robust_fall, 2)
        out.append(Reason("hr_rising", th.hr_rise_with_sbp_fall_level if with_fall
                          else th.hr_rise_level, msg, values))
    score = trend(series.get("news2", ()), now_h, th)
    if score is not None and score.robust_rise >= th.news2_rise_points - 1e-9:
        rise = score.recent - score.earlier
        out.append(Reason(
            "news2_rising", th.news2_rise_level,
            f"NEWS2 rising {_fmt(rise)} points over {_fmt(score.span_h)} h "
            f"({_fmt(score.first)} -> {_fmt(score.last)})",
            {**_trend_values(score), "rise_points": round(rise, 2),
             "robust_rise_points": round(score.robust_rise, 2),
             "threshold_points": th.news2_rise_points}))
    return out


def _partial_reasons(points: dict[str, int], missing: tuple[str, ...],
                     th: StatusThresholds) -> list[Reason]:
    """An incomplete set's points can only grow with the missing parameters: their sum (and
    any 3) is a lower bound on NEWS2, escalated as a complete set would be."""
    total = sum(points.values())
    threes = [p for p, v in points.items() if v == 3]
    values: dict[str, float | str] = {"points_at_least": total,
                                      "missing": ",".join(missing)}
    lead = f"NEWS2 at least {total} from the parameters recorded"
    if total >= 7:
        return [Reason("news2_partial_high", th.news2_high_level,
                       f"{lead} (>= 7, high): emergency assessment", values)]
    if total >= 5:
        return [Reason("news2_partial_medium", th.news2_medium_level,
                       f"{lead} (>= 5, medium): urgent review", values)]
    if threes:
        names = ", ".join(LABELS.get(p, p) for p in threes)
        return [Reason("news2_partial_single_parameter", th.news2_single_parameter_level,
                       f"NEWS2 scores 3 in {names}: urgent review",
                       {**values, "parameters": ",".join(threes)})]
    return []


def _partial_interval_h(points: dict[str, int], th: StatusThresholds) -> float:
    """Chart 4's monitoring interval for the points present (a lower bound on the score)."""
    t = trigger(sum(points.values()), any(v == 3 for v in points.values()))
    return max(float(MONITORING_INTERVAL_H[t]), th.continuous_floor_h)


def monitoring_interval_h(news2: News2 | None,
                          th: StatusThresholds = DEFAULT_THRESHOLDS) -> float:
    """The interval after which a set is overdue: NEWS2's (chart 4), floored for
    "continuous"; ``default_interval_h`` without a score."""
    if news2 is None:
        return th.default_interval_h
    return max(float(news2.monitoring_interval_h), th.continuous_floor_h)


def assess(*, now_h: float, series: dict[str, list[tuple[float, float]]] | None = None,
           news2: News2 | None = None, news2_missing: tuple[str, ...] = (),
           news2_partial: dict[str, int] | None = None, last_set_h: float | None = None,
           forecast: dict[str, list[dict]] | None = None,
           open_alerts: Sequence[tuple[str, str]] = (),
           thresholds: StatusThresholds = DEFAULT_THRESHOLDS) -> Status:
    """The patient's :class:`Status` at ``now_h`` (hours, the same clock as the readings).

    ``series``: endpoint -> [(time_h, value)] ascending (``sbp_mmhg``, ``hr_bpm`` are used by
    the trend rules, ``news2`` as the score history); ``news2``: the latest complete set's
    score; ``news2_missing``: the parameters missing from the latest set when it could not
    be scored, ``news2_partial`` the points of those it has (a lower bound; with readings
    but no set at all, every parameter counts as missing); ``last_set_h``: when
    the latest set (or reading) was taken (default: the latest reading in ``series``);
    ``forecast``: endpoint -> [{"h", "median", "lower", "upper"}] (90 % interval, lead hours);
    ``open_alerts``: [(rule, level)].
    """
    th = thresholds
    series = series or {}
    times = [t for pts in series.values() for t, v in pts
             if t <= now_h + 1e-9 and v is not None and math.isfinite(v)]
    if last_set_h is None and times:
        last_set_h = max(times)
    reasons: list[Reason] = []
    for rule, level in open_alerts:
        if level not in LEVELS[:4]:
            raise ValueError(f"open alert {rule!r}: level must be one of "
                             f"{', '.join(LEVELS[:4])}, got {level!r}")
        reasons.append(Reason(f"alert:{rule}", level, f"open alert {rule} ({level})",
                              {"alert_rule": rule, "alert_level": level}))
    if last_set_h is None and news2 is None and not news2_missing:
        if reasons:
            return Status(most_severe(r.level for r in reasons), tuple(reasons))
        return Status("no-data", (Reason("no_data", "no-data", "no observations recorded"),))

    age = None if last_set_h is None else max(0.0, now_h - last_set_h)
    partial = dict(news2_partial or {})
    if news2 is None and not news2_missing:
        news2_missing = PARAMETERS   # readings (labs), but no bedside set at all
    if news2 is not None:
        reasons += _news2_reasons(news2, th, age)
    elif news2_missing:
        names = ", ".join(LABELS.get(p, p) for p in news2_missing)
        reasons.append(Reason("news2_incomplete", th.news2_incomplete_level,
                              f"NEWS2 not scored: {names} not recorded",
                              {"missing": ",".join(news2_missing)}))
        reasons += _partial_reasons(partial, news2_missing, th)
    if forecast:
        reasons += _forecast_reasons(forecast, th)
    reasons += _trend_reasons(series, now_h, th)
    interval = (monitoring_interval_h(news2, th) if news2 is not None or not partial
                else _partial_interval_h(partial, th))
    if age is not None and age > interval + 1e-9:
        reasons.append(Reason(
            "overdue", th.overdue_level,
            f"observations overdue: last set {_fmt(age)} h ago, due every {_fmt(interval)} h",
            {"age_h": round(age, 2), "interval_h": interval}))
    if not reasons:
        msg = "no rule fired"
        if news2 is not None:
            msg = f"NEWS2 {news2.score}, no trend or forecast concern"
        if age is not None:
            msg += f"; last set {_fmt(age)} h ago"
        reasons.append(Reason("no_concern", "stable", msg,
                              {"age_h": round(age, 2)} if age is not None else {}))
    reasons.sort(key=lambda r: SEVERITY[r.level])
    return Status(most_severe(r.level for r in reasons), tuple(reasons))
