"""Does a rule's condition hold on a patient's latest readings? Pure functions, no database.

Each rule gives a :class:`Finding`: ``met`` (raise, or keep open), ``cleared`` (beyond the
hysteresis band: an open alert resolves) or ``unknown`` (inside the band, no recent reading,
or a NEWS2 set too incomplete to call normal: nothing changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.alerts.rules import Rule
from twin.monitoring import news2
from twin.monitoring.status import StatusThresholds, trend

#: observation code -> NEWS2 parameter
NEWS2_CODES = {"rr_per_min": "respiratory_rate_per_min", "spo2_pct": "spo2_pct",
               "sbp_mmhg": "sbp_mmhg", "hr_bpm": "hr_bpm", "temp_c": "temperature_c"}
ACVPU = "ACVPU"


@dataclass(frozen=True)
class Reading:
    time: datetime
    value: float


@dataclass(frozen=True)
class Finding:
    state: str  # met | cleared | unknown
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)


UNKNOWN = Finding("unknown")


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _recent(latest: dict[str, Reading], code: str, now: datetime,
            max_age_h: float) -> Reading | None:
    r = latest.get(code)
    if r is None or now - r.time > timedelta(hours=max_age_h):
        return None
    return r


def thresholds(rule: Rule, spo2_scale: int) -> tuple[float, float | None]:
    """(threshold, clear) of ``rule`` for a patient on ``spo2_scale``."""
    if spo2_scale == 2 and rule.threshold_scale2 is not None:
        return rule.threshold_scale2, (rule.clear_scale2 if rule.clear_scale2 is not None
                                       else rule.threshold_scale2)
    assert rule.threshold is not None
    return rule.threshold, rule.clear


def _compare(rule: Rule, value: float, threshold: float, clear: float | None,
             message: str, values: dict[str, Any]) -> Finding:
    values = {**values, "threshold": threshold, "clear": clear, "op": rule.op}
    if rule.met(value, threshold):
        return Finding("met", message, values)
    if rule.cleared(value, threshold, clear):
        return Finding("cleared", message, values)
    return Finding("unknown", message, values)


def vital(rule: Rule, latest: dict[str, Reading], now: datetime, spo2_scale: int) -> Finding:
    """A threshold on the latest reading of ``rule.code`` (none recent: unknown)."""
    assert rule.code is not None
    r = _recent(latest, rule.code, now, rule.max_age_h)
    if r is None:
        return UNKNOWN
    threshold, clear = thresholds(rule, spo2_scale)
    message = (f"{rule.code} {_fmt(r.value)} {rule.op} {_fmt(threshold)}"
               + (f" (NEWS2 SpO2 scale {spo2_scale})" if rule.code == "spo2_pct" else ""))
    return _compare(rule, r.value, threshold, clear, message,
                    {rule.code: r.value, "time": r.time.isoformat()})


def observation_set(latest: dict[str, Reading], now: datetime, max_age_h: float,
                    spo2_scale: int) -> news2.ObservationSet:
    """The NEWS2 set of the latest reading of each parameter within ``max_age_h``.

    Supplemental oxygen: ``on_oxygen`` if recorded, else an FiO2 above 21 % or an oxygen flow
    above 0 L/min means on oxygen (either at 21 % / 0 means air)."""
    def get(code: str) -> float | None:
        r = _recent(latest, code, now, max_age_h)
        return None if r is None else r.value

    args: dict[str, Any] = {p: get(c) for c, p in NEWS2_CODES.items()}
    on_o2 = get("on_oxygen")
    if on_o2 is None:
        fio2, flow = get("fio2_pct"), get("o2_flow_l_per_min")
        if fio2 is not None or flow is not None:
            on_o2 = float((fio2 or 21) > 21 or (flow or 0) > 0)
    args["supplemental_oxygen"] = None if on_o2 is None else on_o2 >= 0.5
    level = get("acvpu")
    args["consciousness"] = None if level is None else ACVPU[min(4, max(0, round(level)))]
    return news2.ObservationSet(spo2_scale=spo2_scale, **args)


def news2_score(rule: Rule, obs: news2.ObservationSet) -> Finding:
    """NEWS2 against the threshold: an incomplete set raises on the points present (a lower
    bound of the full score) but never clears."""
    total, components, missing = news2.partial_score(obs)
    assert rule.threshold is not None
    values = {"score": total, "components": components, "missing": list(missing),
              "complete": not missing}
    label = "NEWS2" if not missing else "NEWS2 (incomplete, at least)"
    message = f"{label} {total} {rule.op} {_fmt(rule.threshold)}"
    if missing and not rule.met(total, rule.threshold):
        return Finding("unknown", message, values)
    return _compare(rule, total, rule.threshold, rule.clear, message, values)


def news2_single(rule: Rule, obs: news2.ObservationSet) -> Finding:
    """A 3 in any single NEWS2 parameter recorded; clears when none of the recorded ones
    scores 3 (a parameter not recorded cannot have raised it)."""
    _total, components, missing = news2.partial_score(obs)
    threes = [p for p, v in components.items() if v == 3]
    values = {"parameters": threes, "components": components, "missing": list(missing)}
    if threes:
        return Finding("met", "NEWS2 3 points in " + ", ".join(threes), values)
    if components:
        return Finding("cleared", "no recorded NEWS2 parameter scores 3", values)
    return Finding("unknown", "", values)


def forecast_edge(rule: Rule, forecast: dict | None, now: datetime) -> Finding:
    """The forecast interval's edge over the next ``horizon_h`` hours against the threshold
    (the extreme of the edge: its minimum for a low rule, its maximum for a high one)."""
    if not forecast:
        return UNKNOWN
    ep = (forecast.get("endpoints") or {}).get(rule.code or "")
    if not ep:
        return UNKNOWN
    end = now + timedelta(hours=rule.horizon_h)
    rows = [(datetime.fromisoformat(t), float(v), float(m))
            for t, v, m in zip(ep["times"], ep[rule.edge], ep["median"], strict=False)]
    rows = [r for r in rows if now - timedelta(hours=1) <= r[0] <= end]
    if not rows:
        return UNKNOWN
    t, v, m = (min if rule.low else max)(rows, key=lambda r: r[1])
    assert rule.threshold is not None
    message = (f"{rule.code} forecast ({rule.edge} edge) {_fmt(v)} {rule.op} "
               f"{_fmt(rule.threshold)} within {_fmt(rule.horizon_h)} h")
    return _compare(rule, v, rule.threshold, rule.clear, message,
                    {rule.edge: v, "median": m, "at": t.isoformat(),
                     "horizon_h": rule.horizon_h})


def trend_change(rule: Rule, series: list[Reading], now: datetime) -> Finding:
    """The robust fall (or rise) of ``rule.code`` over the window against the threshold."""
    th = StatusThresholds(trend_window_h=rule.window_h,
                          trend_max_lookback_h=max(48.0, rule.window_h))
    if not series or now - series[-1].time > timedelta(hours=rule.max_age_h):
        return UNKNOWN  # no recent reading: a trend of old data neither raises nor clears
    points = [((r.time - now).total_seconds() / 3600.0, r.value) for r in series]
    tr = trend(points, 0.0, th)
    if tr is None:
        return UNKNOWN
    size = tr.robust_fall if rule.direction == "falling" else tr.robust_rise
    change = tr.recent - tr.earlier
    assert rule.threshold is not None
    message = (f"{rule.code} {rule.direction} {_fmt(abs(change))} over {_fmt(tr.span_h)} h "
               f"({_fmt(tr.first)} -> {_fmt(tr.last)}; robust {_fmt(size)} {rule.op} "
               f"{_fmt(rule.threshold)})")
    return _compare(rule, size, rule.threshold, rule.clear, message,
                    {"robust_change": round(size, 2), "change": round(change, 2),
                     "earlier": tr.earlier, "recent": tr.recent, "first": tr.first,
                     "last": tr.last, "span_h": round(tr.span_h, 2), "n": tr.n})


def evaluate(rule: Rule, latest: dict[str, Reading], now: datetime, spo2_scale: int,
             forecast: dict | None = None,
             series: dict[str, list[Reading]] | None = None) -> Finding:
    """The finding of one (effective, enabled) rule; ``series``: readings per code, oldest
    first (trend rules)."""
    if rule.kind == "vital":
        return vital(rule, latest, now, spo2_scale)
    if rule.kind == "trend":
        return trend_change(rule, (series or {}).get(rule.code or "", []), now)
    if rule.kind == "forecast":
        return forecast_edge(rule, forecast, now)
    obs = observation_set(latest, now, rule.max_age_h, spo2_scale)
    if rule.kind == "news2":
        return news2_score(rule, obs)
    return news2_single(rule, obs)
