"""Evaluation worlds: seeded transforms of a generated test cohort (issue 11, item 5).

Each world perturbs the patients' true trajectories (``Cohort.truth``, natural units) and
their observations consistently: an observation keeps its time and its cuff/lab noise, only
the true value under it changes. So what the forecaster sees before ``now_h`` and the scored
target come from the same (perturbed) patient. None of the perturbations is told to the
forecaster: ``VirtualPatient.scenario_seen`` is never changed.

- ``as-built``: the cohort as generated; target the noise-free trajectory (today's figures)
- ``measured``: the same world; target the next reading (trajectory + ``OBS_NOISE``)
- ``rhythm``: a daily rhythm on the true BP/HR, SBP +-7 mmHg (DBP/MAP in proportion to
  their mean over SBP's), HR +-6 /min, in phase, random phase per patient
- ``variability``: rhythm + an Ornstein-Uhlenbeck (AR(1)) deviation, SD 6 mmHg on SBP with
  2 h memory (time constant), DBP/MAP in proportion, HR the same path x 6/7 (/min)
- ``step``: a persisting non-drug BP change of +-15 mmHg on SBP (DBP/MAP in proportion, HR
  unchanged) at a time uniform in 4-18 h before ``now_h``
- ``missed-doses``: each dose the regimen gives is not taken with p 0.3 (scheduled and extra
  doses); the true trajectory is re-simulated with the doses taken, the forecaster is told the
  full regimen

Every world except ``as-built`` is scored against readings by default (``World.readings``);
``measure`` draws them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from twin.forecast.cohort import ROLES, Cohort, VirtualPatient, simulate_truth
from twin.forecast.endpoints import (
    INDEX,
    NAMES,
    OBS_NOISE,
    PLAUSIBLE,
    from_model_scale,
    to_model_scale,
)
from twin.forecast.observations import Observation
from twin.scenario import Regimen

RHYTHM_SBP_MMHG = 7.0  # amplitude of the daily rhythm on SBP, mmHg
RHYTHM_HR_BPM = 6.0  # amplitude on HR, 1/min
OU_SD_MMHG = 6.0  # stationary SD of the AR(1)/OU deviation on SBP, mmHg
OU_TAU_H = 2.0  # its memory (time constant), h
OU_STEP_H = 0.25  # grid the OU path is drawn on (interpolated between), h
STEP_MMHG = 15.0  # size of the non-drug BP step on SBP, mmHg
STEP_BEFORE_H = (4.0, 18.0)  # the step happens this long before now_h, h
MISSED_P = 0.3  # probability that a dose is not taken
_SBP, _DBP, _MAP, _HR = (INDEX[n] for n in ("sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm"))
_LOWER = np.array([PLAUSIBLE[n][0] for n in NAMES])[:, None]
_UPPER = np.array([PLAUSIBLE[n][1] for n in NAMES])[:, None]

#: A patient's additive offsets: times h [T] -> [E, T] natural units.
Offset = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class World:
    """A world: ``perturb(cohort, rng) -> cohort`` and whether its default target is the
    next reading (True) or the noise-free trajectory (False)."""

    perturb: Callable[[Cohort, np.random.Generator], Cohort]
    readings: bool
    doc: str


# ---- helpers ----------------------------------------------------------------------------
def _shift_observations(obs: tuple[Observation, ...], offset: Offset) -> tuple[Observation, ...]:
    """Observations with ``offset`` (natural units) added at their times, clipped."""
    if not obs:
        return obs
    d = offset(np.asarray([o.time_h for o in obs], dtype=np.float64))
    out = []
    for j, o in enumerate(obs):
        i = INDEX[o.endpoint]
        v = float(np.clip(o.value + d[i, j], _LOWER[i, 0], _UPPER[i, 0]))
        out.append(o if d[i, j] == 0.0 else replace(o, value=v))
    return tuple(out)


def with_offsets(cohort: Cohort, offsets: list[Offset]) -> Cohort:
    """The cohort with per-patient additive offsets on the truth and the observations."""
    truth = np.stack([np.clip(cohort.truth[b] + off(cohort.times_h), _LOWER, _UPPER)
                      for b, off in enumerate(offsets)])
    obs = [_shift_observations(o, off) for o, off in zip(cohort.observations, offsets,
                                                          strict=True)]
    return Cohort(list(cohort.patients), cohort.times_h, truth, obs)


def _bp_offset(truth: np.ndarray, sbp: Callable[[np.ndarray], np.ndarray],
               hr: Callable[[np.ndarray], np.ndarray] | None) -> Offset:
    """Offsets ``sbp(t)`` on SBP, in proportion on DBP and MAP (their mean over SBP's mean
    in this patient's ``truth [E, T]``), ``hr(t)`` on HR (None: unchanged)."""
    ratio = {i: float(truth[i].mean() / truth[_SBP].mean()) for i in (_DBP, _MAP)}

    def offset(t: np.ndarray) -> np.ndarray:
        out = np.zeros((len(NAMES), len(t)))
        s = sbp(t)
        out[_SBP] = s
        out[_DBP], out[_MAP] = ratio[_DBP] * s, ratio[_MAP] * s
        if hr is not None:
            out[_HR] = hr(t)
        return out

    return offset


def _rhythm(phase: float, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """``scale * sin(2 pi t / 24 h + phase)``."""
    return lambda t: scale * np.sin(2.0 * np.pi * np.asarray(t) / 24.0 + phase)


def _ou_path(rng: np.random.Generator, until_h: float, sd: float = OU_SD_MMHG,
             tau_h: float = OU_TAU_H, step_h: float = OU_STEP_H
             ) -> Callable[[np.ndarray], np.ndarray]:
    """A stationary OU path (SD ``sd``, time constant ``tau_h``) on [0, until_h], linear
    between grid points ``step_h`` apart."""
    grid = np.arange(0.0, until_h + step_h, step_h)
    phi = float(np.exp(-step_h / tau_h))
    eps = rng.normal(size=len(grid))
    x = np.empty(len(grid))
    x[0] = sd * eps[0]
    for k in range(1, len(grid)):
        x[k] = phi * x[k - 1] + sd * np.sqrt(1.0 - phi**2) * eps[k]
    return lambda t: np.interp(t, grid, x)


# ---- the worlds -------------------------------------------------------------------------
def as_built(cohort: Cohort, rng: np.random.Generator) -> Cohort:
    """The cohort unchanged (``measured`` too: only its target differs)."""
    return cohort


def rhythm(cohort: Cohort, rng: np.random.Generator) -> Cohort:
    """A daily rhythm on BP (SBP +-7 mmHg, DBP/MAP in proportion) and HR (+-6 /min)."""
    offsets = []
    for b in range(len(cohort.patients)):
        phase = float(rng.uniform(0.0, 2.0 * np.pi))
        offsets.append(_bp_offset(cohort.truth[b], _rhythm(phase, RHYTHM_SBP_MMHG),
                                  _rhythm(phase, RHYTHM_HR_BPM)))
    return with_offsets(cohort, offsets)


def variability(cohort: Cohort, rng: np.random.Generator) -> Cohort:
    """The rhythm plus an OU deviation (SD 6 mmHg on SBP, 2 h memory; HR the path x 6/7)."""
    offsets = []
    until = float(cohort.times_h[-1])
    hr_per_sbp = RHYTHM_HR_BPM / RHYTHM_SBP_MMHG
    for b in range(len(cohort.patients)):
        phase = float(rng.uniform(0.0, 2.0 * np.pi))
        ou = _ou_path(rng, until)
        day_bp, day_hr = _rhythm(phase, RHYTHM_SBP_MMHG), _rhythm(phase, RHYTHM_HR_BPM)
        offsets.append(_bp_offset(
            cohort.truth[b],
            lambda t, day_bp=day_bp, ou=ou: day_bp(t) + ou(t),
            lambda t, day_hr=day_hr, ou=ou: day_hr(t) + hr_per_sbp * ou(t)))
    return with_offsets(cohort, offsets)


def step(cohort: Cohort, rng: np.random.Generator) -> Cohort:
    """A persisting BP step of +-15 mmHg on SBP, 4-18 h before now_h (HR unchanged)."""
    offsets = []
    for b, p in enumerate(cohort.patients):
        size = STEP_MMHG * float(rng.choice([-1.0, 1.0]))
        at = p.now_h - float(rng.uniform(*STEP_BEFORE_H))
        offsets.append(_bp_offset(
            cohort.truth[b],
            lambda t, size=size, at=at: np.where(np.asarray(t) >= at, size, 0.0), None))
    return with_offsets(cohort, offsets)


def skip_doses(regimen: Regimen, rng: np.random.Generator, until_h: float,
               p: float = MISSED_P) -> Regimen:
    """The regimen with each dose it gives before ``until_h`` (h) not taken with p ``p``:
    scheduled doses join ``missed_doses``, extra doses are dropped (a ``then`` likewise)."""
    then = None if regimen.then is None else skip_doses(regimen.then, rng, until_h, p)
    if regimen.dose_mg == 0.0:
        return replace(regimen, then=then)
    end = until_h if regimen.then is None else min(until_h, regimen.then.start_h)
    if regimen.stop_h is not None:
        end = min(end, regimen.stop_h)
    n = max(0, int(np.ceil((end - regimen.start_h) / regimen.interval_h)))
    if regimen.n_doses is not None:
        n = min(n, regimen.n_doses)
    taken = [k for k in range(n) if k not in regimen.missed_doses]
    skipped = [k for k, u in zip(taken, rng.random(len(taken)), strict=True) if u < p]
    extra = [t for t, u in zip(regimen.extra_doses_h, rng.random(len(regimen.extra_doses_h)),
                               strict=True) if not (t < until_h and u < p)]
    return replace(regimen, missed_doses=tuple(regimen.missed_doses) + tuple(skipped),
                   extra_doses_h=tuple(extra), then=then)


def missed_doses(cohort: Cohort, rng: np.random.Generator) -> Cohort:
    """30 % of the doses not taken: the true world re-simulated without them, observations
    moved by the change of truth (additive; multiplicative for CV-noise labs); the forecaster
    keeps the full regimen (``scenario_seen``)."""
    until = float(cohort.times_h[-1]) + 1e-9
    patients: list[VirtualPatient] = []
    changed = []
    for b, p in enumerate(cohort.patients):
        true_reg = skip_doses(p.scenario.regimen, rng, until)
        if true_reg == p.scenario.regimen:
            patients.append(p)
            continue
        patients.append(replace(p, scenario=replace(p.scenario, regimen=true_reg)))
        changed.append(b)
    truth = cohort.truth.copy()
    obs = list(cohort.observations)
    if changed:
        new = simulate_truth([patients[b] for b in changed], cohort.times_h)
        for j, b in enumerate(changed):
            obs[b] = _retruth(obs[b], cohort.times_h, cohort.truth[b], new[j])
            truth[b] = new[j]
    return Cohort(patients, cohort.times_h, truth, obs)


def _retruth(obs: tuple[Observation, ...], times_h: np.ndarray, old: np.ndarray,
             new: np.ndarray) -> tuple[Observation, ...]:
    """Observations of trajectory ``old [E, T]`` moved onto ``new``: + (new - old) for
    additive noise, x new / old for CV noise, both interpolated at the observation time."""
    out = []
    for o in obs:
        i = INDEX[o.endpoint]
        a, b = (float(np.interp(o.time_h, times_h, x[i])) for x in (old, new))
        if OBS_NOISE[o.endpoint][0] == "cv":
            v = o.value * (b / a) if a > 0 else b
        else:
            v = o.value + (b - a)
        out.append(replace(o, value=float(np.clip(v, *PLAUSIBLE[o.endpoint]))))
    return tuple(out)


WORLDS: dict[str, World] = {
    "as-built": World(as_built, False, "the cohort as generated, noise-free target"),
    "measured": World(as_built, True, "the same world scored against the next readings"),
    "rhythm": World(rhythm, True, "daily BP/HR rhythm (SBP +-7 mmHg, HR +-6 /min)"),
    "variability": World(variability, True, "rhythm + OU deviation (SD 6 mmHg, 2 h memory)"),
    "step": World(step, True, "a +-15 mmHg non-drug BP step 4-18 h before now_h"),
    "missed-doses": World(missed_doses, True, "30 % of doses not taken (regimen told in full)"),
}
_KEYS = {name: k for k, name in enumerate(WORLDS)}


def world_rng(name: str, seed: int, stream: int = 0) -> np.random.Generator:
    """The world's own random stream (independent of the cohort's; ``stream`` 1: targets)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), ROLES["test"],
                                                         100 + _KEYS[name], stream]))


def make_world(name: str, cohort: Cohort, seed: int) -> Cohort:
    """``WORLDS[name]`` applied to ``cohort`` with the world's seeded stream."""
    if name not in WORLDS:
        raise ValueError(f"world: must be one of {list(WORLDS)}, got {name!r}")
    return WORLDS[name].perturb(cohort, world_rng(name, seed))


def measure(truth_z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Readings of a truth ``[B, E, L]`` (model scale): each endpoint with its ``OBS_NOISE``
    (additive SD or log-normal CV, natural units, >= 0), back on the model scale."""
    nat = from_model_scale(truth_z, axis=1)
    eps = rng.normal(size=nat.shape)
    out = np.empty_like(nat)
    for i, name in enumerate(NAMES):
        kind, size = OBS_NOISE[name]
        x = nat[:, i]
        out[:, i] = x + size * eps[:, i] if kind == "sd" else x * np.exp(size * eps[:, i])
    return to_model_scale(np.maximum(out, 0.0), axis=1)


def describe() -> dict[str, Any]:
    """name -> one-line description (for ``--help``)."""
    return {name: w.doc for name, w in WORLDS.items()}
