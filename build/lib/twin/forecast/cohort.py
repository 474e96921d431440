"""The virtual cohort: seeded virtual patients, their noise-free trajectories from the
mechanistic twin, and ward-style noisy observations.

Patient ranges (all drawn independently unless stated):

- age 25-85 years (uniform); renal function impaired with probability 0.15 + 0.25 if age > 65
- glucose: constant 4.5-9 mmol/L (p 0.4), "normal" daily profile (p 0.35), "diabetic" (p 0.25)
- infection (ACE2 extension) with probability 0.15, onset 0-120 h
- patient parameters (the twin's ``PATIENT_PARAMETERS``, all multipliers): log-normal with
  the centre and SD(log) of ``COHORT_DISTRIBUTION``, clipped to the twin's bounds; hypertension
  severity is ``map_baseline`` (centre 1.08, SD(log) 0.10: untreated SBP about 120-175 mmHg
  at age 50), personal RAS baselines ``angII/angI/renin_baseline`` (SD(log) 0.35-0.5)
- regimen: benazepril, dose 0 / 5 / 10 / 20 / 40 mg (p .1 / .25 / .3 / .25 / .1), every 24 h
  (p 0.8) or 12 h, start 6-48 h, each dose missed with p 0.1, stopped with p 0.15 (24-120 h
  after start), one extra dose with p 0.1
- forecast time ``now_h``: a whole hour in 24-72 h; the trajectory runs to now_h + 72 h

Observations (``OBS_NOISE``): BP (SBP, DBP, MAP) and HR every 1-8 h (per-patient interval,
+-15 min jitter), cuff noise SD 5 / 5 / 4 mmHg, HR SD 3 /min; AngII and PRA labs with 15 % CV
(log-normal) at t = 0 (p 0.8) and around 06:00 each day (p 0.5 each).

Cohorts for different roles ("train", "calibration", "test") use independent random streams
``SeedSequence([seed, role])`` and role-prefixed patient ids, so they never share patients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from twin.errors import ScenarioError
from twin.forecast.endpoints import NAMES, OBS_NOISE, to_model_scale
from twin.forecast.engines import LEAD_H
from twin.forecast.features import Case
from twin.forecast.observations import Observation
from twin.parameters import PATIENT_PARAMETERS
from twin.scenario import Regimen, Scenario
from twin.simulate import simulate

ROLES = {"train": 1, "calibration": 2, "test": 3, "dev": 4}
HORIZON_H = int(LEAD_H[-1])
NOW_RANGE_H = (24, 72)
BP_ENDPOINTS = ("sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm")
LAB_ENDPOINTS = ("angII_pg_per_ml", "pra_ng_per_ml_per_h")
TRUTH_RTOL = 1e-3  # ground-truth trajectories (relative tolerance of the twin's solver)
TRUTH_CHUNK = 32  # patients per batched simulation (larger batches share steps worse)


@dataclass(frozen=True)
class VirtualPatient:
    """One virtual patient: the scenario (covariates and regimen, what the forecaster is
    told; ``scenario_seen`` is kept separate so a cohort could hide part of it) and the true
    patient-parameter values, which the forecaster is not told."""

    pid: str
    scenario: Any
    scenario_seen: Any
    parameters: dict[str, float]
    now_h: float


@dataclass
class Cohort:
    """Patients, their noise-free hourly trajectories ``truth [P, E, T]`` (natural units on
    ``times_h``) and noisy observations (whole timeline, time-ordered)."""

    patients: list[VirtualPatient]
    times_h: np.ndarray
    truth: np.ndarray
    observations: list[tuple[Observation, ...]]

    def cases(self, now_h: Sequence[float] | None = None) -> list[Case]:
        """One forecasting case per patient: observations up to its ``now_h`` (or the
        given whole-hour forecast times, one per patient)."""
        nows = [p.now_h for p in self.patients] if now_h is None else list(now_h)
        return [
            Case(p.scenario_seen, tuple(o for o in obs if o.time_h <= now), float(now))
            for p, obs, now in zip(self.patients, self.observations, nows, strict=True)
        ]

    def truth_at_leads(self, now_h: Sequence[float] | None = None) -> np.ndarray:
        """``[P, E, L]`` truth (model scale) at now_h + LEAD_H for whole-hour forecast times."""
        nows = [p.now_h for p in self.patients] if now_h is None else list(now_h)
        idx = np.asarray([int(n) for n in nows])[:, None] + LEAD_H.astype(int)
        out = np.stack([self.truth[b][:, idx[b]] for b in range(len(self.patients))])
        return to_model_scale(out, axis=1)


# ---- parameter prior --------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterPrior:
    """Independent priors over patient parameters: log-normal (``log`` True) or normal,
    ``center`` and ``sd`` on that scale, clipped to [lower, upper]."""

    names: tuple[str, ...]
    center: np.ndarray
    sd: np.ndarray
    log: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if k == "names" else np.asarray(v).tolist())
                for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParameterPrior:
        return cls(tuple(d["names"]), *(np.asarray(d[k], dtype=np.float64) for k in
                                         ("center", "sd", "log", "lower", "upper")))

    def subset(self, names: Sequence[str]) -> ParameterPrior:
        """The prior restricted to ``names`` (in this prior's order)."""
        idx = [i for i, n in enumerate(self.names) if n in set(names)]
        return ParameterPrior(tuple(self.names[i] for i in idx), self.center[idx], self.sd[idx],
                              self.log[idx], self.lower[idx], self.upper[idx])

    def medians(self) -> dict[str, float]:
        """The prior's typical (median) value of every parameter."""
        return dict(zip(self.names, self.to_natural(np.zeros(len(self.names))).tolist(),
                        strict=True))

    def to_natural(self, u: np.ndarray) -> np.ndarray:
        """Whitened coordinates ``u`` (prior = standard normal) -> values, clipped."""
        x = self.center + self.sd * u
        return np.clip(np.where(self.log.astype(bool), np.exp(x), x), self.lower, self.upper)

    def to_whitened(self, values: np.ndarray) -> np.ndarray:
        x = np.where(self.log.astype(bool), np.log(np.maximum(values, 1e-300)), values)
        return (x - self.center) / self.sd


#: Cohort distribution of the patient multipliers: name -> (median, SD of log).
COHORT_DISTRIBUTION: dict[str, tuple[float, float]] = {
    "angII_baseline": (1.0, 0.35),
    "angI_baseline": (1.0, 0.35),
    "renin_baseline": (1.0, 0.5),
    "ace_c50": (1.0, 0.3),
    "diacid_clearance": (1.0, 0.25),
    "diacid_volume": (1.0, 0.25),
    "absorption": (1.0, 0.3),
    "renin_feedback": (1.0, 0.3),
    "map_baseline": (1.08, 0.10),
    "pulse_pressure": (1.0, 0.15),
    "hr_baseline": (1.0, 0.12),
    "bp_sensitivity": (1.0, 0.35),
}
DEFAULT_SPREAD = (1.0, 0.2)  # a multiplier not listed above


def default_prior() -> ParameterPrior:
    """The cohort's parameter distribution over the twin's PATIENT_PARAMETERS (log-normal)."""
    names = tuple(PATIENT_PARAMETERS)
    med_sd = [COHORT_DISTRIBUTION.get(n, DEFAULT_SPREAD) for n in names]
    return ParameterPrior(
        names,
        np.log([m for m, _ in med_sd]),
        np.asarray([sd for _, sd in med_sd], dtype=np.float64),
        np.ones(len(names)),
        np.asarray([PATIENT_PARAMETERS[n].lower for n in names], dtype=np.float64),
        np.asarray([PATIENT_PARAMETERS[n].upper for n in names], dtype=np.float64),
    )


# ---- sampling ---------------------------------------------------------------------------
def draw_now_h(rng: np.random.Generator, size: int | None = None) -> Any:
    """Forecast time(s): whole hours uniform in NOW_RANGE_H (inclusive), hours."""
    return rng.integers(NOW_RANGE_H[0], NOW_RANGE_H[1] + 1, size=size)


def forecast_cases(cohort: Cohort, origins: int = 1, seed: int = 0
                   ) -> tuple[list[Case], np.ndarray]:
    """Forecasting cases and their truth ``[n, E, L]`` (model scale): the patients' own
    ``now_h`` first, then ``origins - 1`` more forecast times per patient drawn like now_h.

    The one way cases are made from a cohort: calibration (conformal scores) and evaluation
    both use it, so their scores are exchangeable (same forecast-time distribution, same
    observation histories, same truth)."""
    rng = np.random.default_rng(seed)
    cases, truth = [], []
    for j in range(origins):
        nows = [p.now_h for p in cohort.patients] if j == 0 else \
            draw_now_h(rng, len(cohort.patients)).astype(float).tolist()
        cases += cohort.cases(nows)
        truth.append(cohort.truth_at_leads(nows))
    return cases, np.concatenate(truth)


def _regimen(rng: np.random.Generator) -> Any:
    dose = float(rng.choice([0.0, 5.0, 10.0, 20.0, 40.0], p=[0.1, 0.25, 0.3, 0.25, 0.1]))
    interval = 24.0 if rng.random() < 0.8 else 12.0
    start = float(np.round(rng.uniform(6.0, 48.0), 2))
    n_sched = int((NOW_RANGE_H[1] + HORIZON_H - start) // interval) + 1
    missed = tuple(int(k) for k in np.flatnonzero(rng.random(n_sched) < 0.1))
    stop = float(start + rng.uniform(24.0, 120.0)) if rng.random() < 0.15 else None
    extra = (float(np.round(rng.uniform(start, start + 96.0), 2)),) if rng.random() < 0.1 else ()
    return Regimen(drug="benazepril", dose_mg=dose, interval_h=interval, start_h=start,
                   stop_h=stop, missed_doses=missed, extra_doses_h=extra)


def sample_patient(rng: np.random.Generator, pid: str, prior: ParameterPrior) -> VirtualPatient:
    """Draw one virtual patient (see the module docstring for the ranges)."""
    age = float(np.round(rng.uniform(25.0, 85.0), 1))
    impaired = rng.random() < 0.15 + (0.25 if age > 65 else 0.0)
    g = rng.random()
    glucose: float | str = (
        float(np.round(rng.uniform(4.5, 9.0), 2)) if g < 0.4 else
        ("normal" if g < 0.75 else "diabetic")
    )
    infected = bool(rng.random() < 0.15)
    onset = float(np.round(rng.uniform(0.0, 120.0), 2)) if infected else 0.0
    regimen = _regimen(rng)
    u = rng.normal(size=len(prior.names))
    params = dict(zip(prior.names, prior.to_natural(u).tolist(), strict=True))
    now = float(draw_now_h(rng))
    scen = Scenario(age_years=age, renal_function="impaired" if impaired else "normal",
                    glucose=glucose, infected=infected, infection_onset_h=onset,
                    regimen=regimen)
    return VirtualPatient(pid, scen, scen, params, now)


def observe(rng: np.random.Generator, times_h: np.ndarray, truth: np.ndarray,
            until_h: float) -> tuple[Observation, ...]:
    """Noisy ward observations of one patient's trajectory ``truth [E, T]`` up to until_h."""
    index = {n: i for i, n in enumerate(NAMES)}
    out: list[Observation] = []
    interval = float(rng.integers(1, 9))
    t = float(rng.uniform(0.0, min(interval, 2.0)))
    bp_times = []
    while t <= until_h:
        bp_times.append(t)
        t += interval + rng.uniform(-0.25, 0.25)
    lab_times = [0.0] if rng.random() < 0.8 else []
    lab_times += [d * 24.0 + 6.0 + rng.uniform(-1, 1) for d in range(int(until_h // 24) + 1)
                  if rng.random() < 0.5]
    for name, ts in [(n, bp_times) for n in BP_ENDPOINTS] + [(n, lab_times) for n in LAB_ENDPOINTS]:
        kind, size = OBS_NOISE[name]
        for tt in ts:
            if tt > until_h:
                continue
            true = float(np.interp(tt, times_h, truth[index[name]]))
            eps = rng.normal()
            noisy = true + size * eps if kind == "sd" else true * np.exp(size * eps)
            out.append(Observation(round(float(tt), 4), name, float(max(noisy, 0.0))))
    out.sort(key=lambda o: (o.time_h, index[o.endpoint]))
    return tuple(out)


def simulate_truth(patients: Sequence[VirtualPatient], times_h: np.ndarray,
                   chunk: int = TRUTH_CHUNK, progress: Any = None) -> np.ndarray:
    """Noise-free trajectories ``[P, E, T]`` (natural units) from the clinical twin."""
    out = []
    names = list(patients[0].parameters)
    for start in range(0, len(patients), chunk):
        part = patients[start : start + chunk]
        overrides = {n: torch.tensor([p.parameters[n] for p in part], dtype=torch.float64)
                     for n in names}
        with torch.no_grad():
            res = simulate([p.scenario for p in part], times_h, overrides=overrides or None,
                           rtol=TRUTH_RTOL)
        out.append(np.stack([res.endpoints[n].detach().numpy() for n in NAMES], axis=1))
        if progress:
            progress(start + len(part), len(patients))
    return np.concatenate(out)


def generate_cohort(seed: int, n: int, role: str = "test",
                    prior: ParameterPrior | None = None, progress: Any = None) -> Cohort:
    """A seeded cohort of ``n`` patients for a role (train / calibration / test / dev)."""
    if role not in ROLES:
        raise ScenarioError("role", f"must be one of {list(ROLES)}, got {role!r}")
    if n < 1:
        raise ScenarioError("n", f"must be >= 1, got {n}")
    prior = prior or default_prior()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), ROLES[role]]))
    patients = [sample_patient(rng, f"{role}-{seed}-{i}", prior) for i in range(n)]
    times = np.arange(0.0, NOW_RANGE_H[1] + HORIZON_H + 1.0)
    truth = simulate_truth(patients, times, progress=progress)
    obs = [observe(rng, times, truth[b], float(NOW_RANGE_H[1])) for b in range(len(patients))]
    return Cohort(patients, times, truth, obs)
