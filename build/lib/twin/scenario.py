"""Patient and treatment description: `Scenario` and `Regimen`, validated on construction.

Times are hours from the scenario's origin t = 0. Invalid input raises `ScenarioError`
(``twin.errors``) naming the field, with a message giving and the allowed range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from twin.drugs import DRUG_NAMES
from twin.errors import ScenarioError

__all__ = ["BASELINE_RANGES", "Regimen", "Scenario", "ScenarioError"]

MAX_DOSE_MG = 80.0
MAX_HOURS = 24.0 * 365.0
GLUCOSE_PROFILES = ("normal", "diabetic")
RENAL_FUNCTIONS = ("normal", "impaired")

# Personal pre-treatment values a scenario may carry: name -> (lower, upper) allowed range.
BASELINE_RANGES: dict[str, tuple[float, float]] = {
    "angI_pg_per_ml": (10.0, 5000.0),
    "angII_pg_per_ml": (1.0, 300.0),
    "renin_pg_per_ml": (0.5, 500.0),
    "pra_ng_per_ml_per_h": (0.75, 50.0),
    "sbp_mmhg": (80.0, 250.0),
    "dbp_mmhg": (40.0, 150.0),
    "hr_bpm": (35.0, 150.0),
}



def _number(name: str, value: Any, lower: float, upper: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(name, f"must be a number in [{lower:g}, {upper:g}], got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < lower or value > upper:
        raise ScenarioError(name, f"must be in [{lower:g}, {upper:g}], got {value:g}")
    return value


@dataclass(frozen=True)
class Regimen:
    """An oral dosing regimen: `dose_mg` every `interval_h` hours from `start_h`.

    `n_doses` limits the number of scheduled doses, `stop_h` stops dosing (exclusive),
    `missed_doses` lists 0-based indices of scheduled doses not taken, `extra_doses_h` adds
    doses of `dose_mg` at the given times. `dose_mg == 0` means untreated.
    `then`: a change of regimen (same drug): from `then.start_h` on, `then` replaces this
    one (its scheduled doses stop there; a `then` with `dose_mg == 0` stops treatment).
    """

    drug: str = "benazepril"
    dose_mg: float = 0.0
    interval_h: float = 24.0
    n_doses: int | None = None
    start_h: float = 0.0
    stop_h: float | None = None
    missed_doses: tuple[int, ...] = ()
    extra_doses_h: tuple[float, ...] = ()
    then: Regimen | None = None

    def __post_init__(self) -> None:
        if self.drug not in DRUG_NAMES:
            raise ScenarioError("drug",
                f"must be one of {', '.join(DRUG_NAMES)}, got {self.drug!r}")
        object.__setattr__(self, "dose_mg", _number("dose_mg", self.dose_mg, 0.0, MAX_DOSE_MG))
        object.__setattr__(self, "interval_h", _number("interval_h", self.interval_h, 1.0, 168.0))
        if self.n_doses is not None:
            if isinstance(self.n_doses, bool) or not isinstance(self.n_doses, int):
                raise ScenarioError("n_doses",
                    f"must be an integer in [1, 10000], got {self.n_doses!r}")
            _number("n_doses", self.n_doses, 1, 10000)
        object.__setattr__(self, "start_h", _number("start_h", self.start_h, 0.0, MAX_HOURS))
        if self.stop_h is not None:
            stop = _number("stop_h", self.stop_h, 0.0, MAX_HOURS)
            if stop < self.start_h:
                raise ScenarioError("stop_h",
                    f"must be in [start_h={self.start_h:g}, {MAX_HOURS:g}], got {stop:g}")
            object.__setattr__(self, "stop_h", stop)
        missed = tuple(self.missed_doses)
        for k in missed:
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise ScenarioError("missed_doses", f"must be dose indices >= 0, got {k!r}")
        object.__setattr__(self, "missed_doses", tuple(sorted(set(missed))))
        extra = tuple(_number("extra_doses_h", t, 0.0, MAX_HOURS) for t in self.extra_doses_h)
        object.__setattr__(self, "extra_doses_h", tuple(sorted(extra)))
        if self.then is not None:
            if not isinstance(self.then, Regimen):
                raise ScenarioError("then", f"must be a Regimen, got {type(self.then).__name__}")
            if self.then.drug != self.drug and self.dose_mg > 0 and self.then.dose_mg > 0:
                raise ScenarioError("then.drug", f"a change of regimen keeps the drug "
                                    f"({self.drug}), got {self.then.drug!r}")
            if self.then.start_h < self.start_h:
                raise ScenarioError("then.start_h", f"must be >= start_h={self.start_h:g}, "
                                    f"got {self.then.start_h:g}")

    @property
    def active_drug(self) -> str:
        """The drug actually given (a change from "no dose" to a drug takes that drug)."""
        if self.dose_mg == 0.0 and self.then is not None:
            return self.then.active_drug
        return self.drug

    def dose_times_h(self, until_h: float) -> tuple[tuple[float, float], ...]:
        """Doses taken before `until_h` as sorted (time_h, dose_mg) pairs; () when untreated."""
        if self.then is not None:
            switch = self.then.start_h
            own = replace(self, then=None).dose_times_h(min(until_h, switch))
            return tuple(sorted(own + self.then.dose_times_h(until_h)))
        if self.dose_mg == 0.0:
            return ()
        doses = []
        k = 0
        while True:
            t = self.start_h + k * self.interval_h
            if t >= until_h or (self.n_doses is not None and k >= self.n_doses):
                break
            if self.stop_h is not None and t >= self.stop_h:
                break
            if k not in self.missed_doses:
                doses.append((t, self.dose_mg))
            k += 1
        doses.extend((t, self.dose_mg) for t in self.extra_doses_h if t < until_h)
        return tuple(sorted(doses))


@dataclass(frozen=True)
class Scenario:
    """A virtual patient and treatment.

    glucose: constant plasma glucose in mmol/L, or the daily profile "normal" / "diabetic".
    baseline: personal pre-treatment values (keys of BASELINE_RANGES) that the untreated
    steady state must reproduce.
    """

    age_years: float = 50.0
    renal_function: str = "normal"
    glucose: float | str = 5.0
    infected: bool = False
    infection_onset_h: float = 0.0
    regimen: Regimen = field(default_factory=Regimen)
    baseline: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "age_years", _number("age_years", self.age_years, 0.0, 120.0))
        if self.renal_function not in RENAL_FUNCTIONS:
            raise ScenarioError("renal_function",
                f"must be one of normal, impaired, got {self.renal_function!r}")
        if isinstance(self.glucose, str):
            if self.glucose not in GLUCOSE_PROFILES:
                raise ScenarioError("glucose",
                    f"must be a number in [2, 30] mmol/L or one of normal, diabetic, "
                    f"got {self.glucose!r}")
        else:
            object.__setattr__(self, "glucose", _number("glucose", self.glucose, 2.0, 30.0))
        if not isinstance(self.infected, bool):
            raise ScenarioError("infected", f"must be true or false, got {self.infected!r}")
        object.__setattr__(self, "infection_onset_h",
                           _number("infection_onset_h", self.infection_onset_h, 0.0, MAX_HOURS))
        if not isinstance(self.regimen, Regimen):
            raise ScenarioError("regimen", f"must be a Regimen, got {type(self.regimen).__name__}")
        object.__setattr__(self, "baseline", self._checked_baseline())

    def _checked_baseline(self) -> dict[str, float]:
        if not isinstance(self.baseline, Mapping):
            raise ScenarioError("baseline",
                f"must be a mapping of name to value, got {self.baseline!r}")
        out = {}
        for name, value in self.baseline.items():
            if name not in BASELINE_RANGES:
                raise ScenarioError("baseline",
                    f"unknown name {name!r}, allowed: {', '.join(BASELINE_RANGES)}")
            lower, upper = BASELINE_RANGES[name]
            out[name] = _number(f"baseline.{name}", value, lower, upper)
        sbp, dbp = out.get("sbp_mmhg"), out.get("dbp_mmhg")
        if sbp is not None and dbp is not None and sbp < dbp + 10.0:
            raise ScenarioError("baseline.sbp_mmhg",
                f"must be at least dbp_mmhg + 10 = {dbp + 10:g}, got {sbp:g}")
        return out

    def __hash__(self) -> int:
        return hash((self.age_years, self.renal_function, self.glucose, self.infected,
                     self.infection_onset_h, self.regimen, tuple(sorted(self.baseline.items()))))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scenario) and hash(self) == hash(other) and all(
            getattr(self, f) == getattr(other, f) for f in
            ("age_years", "renal_function", "glucose", "infected", "infection_onset_h",
             "regimen")) and dict(self.baseline) == dict(other.baseline)
