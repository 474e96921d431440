"""Wall-clock patient data in twin time: the origin (twin hour 0), regimens and scenarios."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from app import forecasting
from app.errors import field_error
from app.models import Observation, Patient, utcnow
from app.schemas import RegimenIn

#: forecasts use the observations of this window before "now" (twin time stays short)
LOOKBACK = timedelta(days=30)
#: a regimen may start at most this far ahead
MAX_START_AHEAD = timedelta(days=180)
#: doses of a regimen are simulated from at most this long before the first observation of the
#: window: the simulated span (and the cost of a forecast) then no longer grows with how long
#: ago the regimen started (a start in 1999 cost 82 s); 72 h is 3.6 half-lives of benazeprilat
#: even with impaired renal function (t1/2 20 h), so the drug is > 90 % of its steady state
REGIMEN_LEAD = timedelta(hours=72)


def check_regimen_start(data: RegimenIn, field: str = "start") -> None:
    """A regimen may not start more than MAX_START_AHEAD from now."""
    if data.start > utcnow() + MAX_START_AHEAD:
        raise field_error(field, f"must be at most {MAX_START_AHEAD.days} days ahead")


def phase_start(r, floor: datetime) -> datetime:
    """The regimen's first dose time at or after ``floor`` (same dosing phase)."""
    if r.start >= floor:
        return r.start
    step = timedelta(hours=r.interval_h)
    k = math.ceil((floor - r.start) / step)
    return r.start + k * step


def origin(p: Patient, obs: list[Observation], now: datetime, regimens=()) -> datetime:
    """Twin hour 0: the earliest of the first observation, regimen starts and infection
    onset within the look-back window (never before ``now - LOOKBACK``); a regimen's start
    counts from at most REGIMEN_LEAD before the first observation (earlier doses dropped)."""
    floor = now - LOOKBACK
    times = [o.time for o in obs[:1]]
    lead = max(floor, times[0] - REGIMEN_LEAD) if times else floor
    times += [phase_start(r, lead) for r in regimens if r is not None]
    if p.infection_onset is not None:
        times.append(p.infection_onset)
    return max(min(times), floor) if times else floor


def twin_regimen(r, origin: datetime, until_h: float):
    """A stored/proposed regimen in twin hours (untreated if None or already stopped)."""
    if r is None or (r.stop is not None and r.stop <= origin):
        return forecasting.make_regimen("benazepril", 0.0, 24.0, 0.0, None)
    start_h = forecasting.hours(origin, phase_start(r, origin))
    stop_h = forecasting.hours(origin, r.stop) if r.stop else None
    if stop_h is not None and stop_h > until_h:
        stop_h = None  # stops after the forecast window: irrelevant here
    return forecasting.make_regimen(r.drug, r.dose_mg, r.interval_h, start_h, stop_h)


def changed_regimen(current, proposed, origin: datetime, until_h: float):
    """The current regimen until ``proposed`` starts, then ``proposed`` (the doses already
    taken stay in the patient's past; the fit to the observations needs them)."""
    new = twin_regimen(proposed, origin, until_h)
    old = twin_regimen(current, origin, until_h)
    if old.dose_mg == 0.0 or new.start_h <= old.start_h:
        return new  # nothing given before the proposed start
    if new.dose_mg > 0.0 and new.drug != old.drug:
        raise field_error("regimen.drug", f"a change of drug ({old.drug} to {new.drug}) is "
                          f"not modelled: the proposed regimen must use {old.drug}, or stop it "
                          "first (dose_mg 0)")
    return forecasting.make_regimen(old.drug, old.dose_mg, old.interval_h, old.start_h,
                                    old.stop_h, then=new)


def scenario(p: Patient, origin: datetime, regimen) -> Any:
    """The patient's covariates and ``regimen`` as a twin scenario."""
    onset_h = forecasting.hours(origin, p.infection_onset) if p.infection_onset else 0.0
    return forecasting.make_scenario(p.age_years, p.renal_function, p.glucose, p.infected,
                                     max(onset_h, 0.0), regimen)
