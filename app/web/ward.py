"""The ward's rows: status with reasons, latest HR and BP, NEWS2, SBP trend, time since the
last set, stale marking, open alerts; ordered for a charge nurse.

Order (the default, ``sort=status``): by status severity (``LEVELS``: critical, urgent,
watch, stable, no-data), then, within a level, the most overdue first: the time past the
patient's monitoring interval (NEWS2's minimum frequency, 12 h without a score), so the
patient whose observations are longest overdue is at the top of their level; patients not
yet due follow, longest since their last set first.

The status comes from ``app.services.status``, the NEWS2 set from ``app.services.news2``,
the open alerts from ``app.alerts.service``; the fallbacks below (documented per function)
only keep the page up should the status or NEWS2 modules be absent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from app import auth, services
from app.alerts import service as alerts_service
from app.errors import ApiError
from app.services import last_forecast
from app.services import los as los_service
from app.services import news2 as news2_service
from app.services.regimens import regimen_active
from app.services.status import cached_forecast, patient_status
from twin.monitoring import news2 as news2_rules
from twin.monitoring.status import LABELS, SEVERITY, trend


def _alerts_service():
    """``app.alerts.service`` (a function so the tests and the ack route share one seam)."""
    return alerts_service


#: hours of observations a row looks at (the status rules' longest trend look-back)
TREND_LOOKBACK_H = 48.0
#: without any in that window: this many of the newest observations
RECENT = 400
#: SBP change (mmHg, robust to one reading) that turns the trend arrow
TREND_MMHG = 10.0
#: without a NEWS2 score, observations are due every 12 h (the RCP's low-risk minimum)
DEFAULT_INTERVAL_H = 12.0
#: NEWS2 parameter -> stored observation code
SET_CODES = {"respiratory_rate_per_min": "rr_per_min", "spo2_pct": "spo2_pct",
             "supplemental_oxygen": "on_oxygen", "sbp_mmhg": "sbp_mmhg", "hr_bpm": "hr_bpm",
             "consciousness": "acvpu", "temperature_c": "temp_c"}
ACVPU = ("A", "C", "V", "P", "U")


def ago(seconds: float | None) -> str:
    """"2 h 10 min ago", "5 min ago", "3 days 4 h ago"; "–" when there is no reading."""
    if seconds is None:
        return "–"
    minutes = int(max(0.0, seconds) // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min ago" if minutes else f"{hours} h ago"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h ago" if hours else f"{days} days ago"


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


def _recent(patient_id: str, now: datetime) -> list:
    """The observations of the last TREND_LOOKBACK_H (trend, latest values); when there are
    none, the newest RECENT ever (a stale patient still shows their last values)."""
    rows, _ = services.list_observations(patient_id, now - timedelta(hours=TREND_LOOKBACK_H),
                                         None)
    if rows:
        return rows
    _, total = services.list_observations(patient_id, None, None, limit=0)
    if not total:
        return []
    rows, _ = services.list_observations(patient_id, None, None, limit=RECENT,
                                         offset=max(0, total - RECENT))
    return rows


def _latest(obs: list, code: str):
    for o in reversed(obs):
        if o.code == code:
            return o
    return None


def latest_set(patient_id: str, obs: list, spo2_scale: int = 1,
               now: datetime | None = None) -> dict | None:
    """The newest observation set as NEWS2 sees it: ``app.services.news2.latest_set`` when
    it is there; else the values sharing the newest time of a NEWS2 code, scored when
    complete, else the points present with ``complete`` False and the missing parameters
    (never shown as a normal score); ``stale`` when older than its monitoring interval."""
    now = now or datetime.now(UTC)
    if news2_service is not None:
        return news2_service.latest_set(patient_id, now)
    codes = set(SET_CODES.values())
    times = [o.time for o in obs if o.code in codes]
    if not times or news2_rules is None:
        return None
    t = max(times)
    at = {o.code: o.value for o in obs if o.time == t and o.code in codes}
    values: dict[str, Any] = {}
    for param, code in SET_CODES.items():
        v = at.get(code)
        if v is not None and param == "supplemental_oxygen":
            v = bool(v)
        elif v is not None and param == "consciousness":
            v = ACVPU[int(v)]
        values[param] = v
    obs_set = news2_rules.ObservationSet(spo2_scale=spo2_scale, **values)
    missing = list(obs_set.missing())
    age_h = (now - t).total_seconds() / 3600
    if missing:
        total, components, _ = news2_rules.partial_score(obs_set)
        return {"score": total, "components": components, "risk": None, "complete": False,
                "missing": missing, "time": t, "age_h": age_h, "monitoring_interval_h": None,
                "stale": age_h > DEFAULT_INTERVAL_H}
    result = news2_rules.score(obs_set)
    interval = max(result.monitoring_interval_h, 0.5)
    return {"score": result.score, "components": result.components, "risk": result.risk,
            "complete": True, "missing": [], "time": t, "age_h": age_h,
            "monitoring_interval_h": result.monitoring_interval_h,
            "stale": age_h > interval}


def sbp_trend(obs: list, now: datetime) -> str | None:
    """"falling", "rising" or "steady": the median of the recent half of the SBP readings
    against the earlier half, in the status rules' trend window (24 h, reaching back to 48 h
    for 4 readings), turned at TREND_MMHG; None with too few readings. (The arrow shows the
    direction; the ``sbp_falling`` status rule asks for more: a fall robust to any reading.)
    """
    pts = [((o.time - now).total_seconds() / 3600, o.value) for o in obs if o.code == "sbp_mmhg"]
    if trend is not None:
        tr = trend(pts, 0.0)
        if tr is None:
            return None
        fall, rise = -tr.change, tr.change
    else:  # pragma: no cover - fallback without the status module
        pts = [p for p in pts if p[0] >= -24]
        if len(pts) < 4:
            return None
        k = len(pts) // 2
        change = sum(v for _, v in pts[k:]) / (len(pts) - k) - sum(v for _, v in pts[:k]) / k
        fall, rise = -change, change
    if fall >= TREND_MMHG:
        return "falling"
    if rise >= TREND_MMHG:
        return "rising"
    return "steady"


def _fallback_status(sbp: float | None, fc24: dict | None, stale: bool,
                     age_text: str) -> dict:
    """Without ``app.services.status``: the former SBP rule (24 h median, else latest SBP)
    mapped onto the levels, and stale data never "stable"."""
    value = fc24["median"] if fc24 else sbp
    if value is None:
        return {"level": "no-data", "reasons": [{"rule": "no_data", "level": "no-data",
                                                 "message": "No readings yet.", "values": {}}]}
    reasons = []
    if value < 90:
        reasons.append({"rule": "sbp_low", "level": "urgent",
                        "message": f"SBP {value:.0f} mmHg (below 90)", "values": {"sbp": value}})
    elif value >= 160:
        reasons.append({"rule": "sbp_high", "level": "watch",
                        "message": f"SBP {value:.0f} mmHg (160 or above)",
                        "values": {"sbp": value}})
    if stale:
        reasons.append({"rule": "overdue", "level": "watch",
                        "message": f"Observations overdue: last set {age_text}", "values": {}})
    level = min((r["level"] for r in reasons), key=SEVERITY.__getitem__, default="stable")
    return {"level": level, "reasons": reasons}


def _status(patient_id: str, fc: dict | None, fallback: dict) -> dict:
    """``patient_status`` as a dict; should the rules fail, the fallback with a "watch"
    reason saying so (logged): one patient's failure never takes the ward down, and never
    shows as "stable"."""
    if patient_status is None:
        return fallback
    try:
        return patient_status(patient_id, forecast=fc).as_dict()
    except Exception:  # any failure of the rules: shown, logged, not fatal
        current_app.logger.exception("status rules failed", extra={"patient_id": patient_id})
    reasons = [*fallback["reasons"], {"rule": "status_unavailable", "level": "watch",
                                      "message": "Status rules failed (logged): check the "
                                                 "patient.", "values": {}}]
    level = min((fallback["level"], "watch"), key=SEVERITY.__getitem__)
    return {"level": level, "reasons": reasons}


def open_alerts(patient_id: str) -> list[dict]:
    """The patient's open alerts as plain dicts (id, rule, level, status, message, raised)."""
    service = _alerts_service()
    if service is None:
        return []
    out = []
    for a in service.list_alerts(status="open", patient_id=patient_id):
        raised = _get(a, "raised_at")
        if isinstance(raised, str):
            try:
                raised = datetime.fromisoformat(raised.replace("Z", "+00:00"))
            except ValueError:
                raised = None
        out.append({"id": _get(a, "id"), "rule": _get(a, "rule"), "level": _get(a, "level"),
                    "status": _get(a, "status"),
                    "message": _get(a, "message") or _get(a, "rule"), "raised_at": raised})
    return out


def at_24h(fc: dict, name: str) -> dict[str, float] | None:
    ep = fc["endpoints"].get(name)
    if not ep:
        return None
    i = min(range(len(ep["times_h"])),
            key=lambda k: abs(ep["times_h"][k] - (ep["times_h"][0] + 24)))
    return {"median": ep["median"][i], "lower": ep["lower"][i], "upper": ep["upper"][i]}


def ward_row(p, deadline: float | None = None, now: datetime | None = None,
             compute: bool = True) -> dict[str, Any]:
    """One patient's row (see the module docstring). ``deadline`` (monotonic): past it, an
    uncached forecast is not computed and the row says "forecast pending". ``compute``
    False (the live fragments): only a cached forecast is shown, else the row is marked
    ``pending`` ("forecast computing"; ``live.js`` fetches it again shortly), so a live
    update never waits for a fit."""
    now = now or datetime.now(UTC)
    obs = _recent(p.id, now)
    sbp, dbp, hr = _latest(obs, "sbp_mmhg"), _latest(obs, "dbp_mmhg"), _latest(obs, "hr_bpm")
    fc, fc24, note, pending = None, None, "", False
    if sbp is not None and not compute:
        fc = cached_forecast(p.id) if cached_forecast is not None else None
        fc24 = at_24h(fc, "sbp_mmhg") if fc else None
        if fc24 is None:
            note, pending, fc = "forecast computing…", True, None
            last_forecast.schedule_warmup(p.id)
    elif sbp is not None and deadline is not None and time.monotonic() > deadline:
        note = "forecast pending (reload)"
    elif sbp is not None:
        try:
            fc = services.forecast(p.id, horizon_h=24, coverage=0.9, actor=auth.actor())
            fc24 = at_24h(fc, "sbp_mmhg")
        except ApiError as exc:
            note = "forecast unavailable"
            current_app.logger.info("ward forecast unavailable",
                                    extra={"patient_id": p.id, "detail": exc.detail})
    news2 = latest_set(p.id, obs, getattr(p, "spo2_scale", 1) or 1, now)
    last_time = news2["time"] if news2 else None  # the last bedside set, not a lab
    age_s = (now - last_time).total_seconds() if last_time else None
    interval_h = DEFAULT_INTERVAL_H
    if news2 and news2["complete"] and news2.get("monitoring_interval_h") is not None:
        interval_h = max(news2["monitoring_interval_h"], 0.5)
    elif news2:  # incomplete: the interval its points present imply (a lower bound)
        pts = news2.get("components") or {}
        trig = news2_rules.trigger(sum(pts.values()), any(v == 3 for v in pts.values()))
        interval_h = max(news2_rules.MONITORING_INTERVAL_H[trig], 0.5)
    overdue_h = (age_s / 3600 - interval_h) if age_s is not None else None
    stale = overdue_h is not None and overdue_h > 0
    age_text = ago(age_s)
    status = _status(p.id, fc, _fallback_status(sbp.value if sbp else None, fc24, stale,
                                                age_text))
    level = status["level"] if status["level"] in SEVERITY else "no-data"
    return {"patient": p, "level": level, "rank": SEVERITY[level],
            "reasons": status.get("reasons", []),
            "sbp": sbp.value if sbp else None, "dbp": dbp.value if dbp else None,
            "bp_time": sbp.time if sbp else None, "hr": hr.value if hr else None,
            "hr_time": hr.time if hr else None, "news2": news2,
            "trend": sbp_trend(obs, now), "last_time": last_time, "age_s": age_s,
            "age_text": age_text, "interval_h": interval_h, "overdue_h": overdue_h,
            "stale": stale, "fc24": fc24,
            "missing": [LABELS.get(m, m.replace("_", " ")) for m in
                        (news2 or {}).get("missing", [])],
            "note": note, "pending": pending, "alerts": open_alerts(p.id),
            "status": level, "stay": los_service.remaining_stay(p.id, now),
            "regimen_active": regimen_active(p.regimen, now)}


def ward_rows() -> list[dict[str, Any]]:
    """Every patient's row, in stored order. With the background warm-up (the default) no
    forecast is computed here: an uncached one is queued and its row says "forecast
    computing" until ``live.js`` fetches it again. Without it, uncached forecasts are
    computed until WARD_FORECAST_BUDGET_S is spent; later rows say "forecast pending"."""
    patients, _ = services.list_patients(10_000, 0)
    now = datetime.now(UTC)
    if last_forecast.background():
        return [ward_row(p, now=now, compute=False) for p in patients]
    deadline = time.monotonic() + current_app.config["WARD_FORECAST_BUDGET_S"]
    return [ward_row(p, deadline, now) for p in patients]


def urgency_key(r: dict) -> tuple:
    """Severity first, then the most overdue (no reading at all: last)."""
    overdue = r["overdue_h"] if r["overdue_h"] is not None else float("-inf")
    return (r["rank"], -overdue, r["patient"].id)


SORT_KEYS = ("status", "id", "age", "sbp", "hr", "news2", "forecast_sbp", "last", "stay")


def sort_rows(rows: list[dict], key: str, desc: bool) -> list[dict]:
    """``status``: :func:`urgency_key` (``desc`` reverses it); others by value, rows without
    one last either way."""
    if key == "status":
        rows = sorted(rows, key=urgency_key)
        return rows[::-1] if desc else rows

    def value(r):
        n2 = r["news2"]
        v = {"id": r["patient"].id, "age": r["patient"].age_years, "sbp": r["sbp"],
             "hr": r["hr"], "news2": n2["score"] if n2 else None,
             "forecast_sbp": r["fc24"]["median"] if r["fc24"] else None,
             "last": r["age_s"],
             "stay": r["stay"]["median_h"] if r.get("stay") else None}[key]
        return (v is None, v if v is not None else 0)

    rows = sorted(rows, key=value)
    if desc:
        none = [r for r in rows if value(r)[0]]
        rows = [r for r in rows if not value(r)[0]][::-1] + none
    return rows
