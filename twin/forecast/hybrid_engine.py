"""The hybrid twin: the mechanistic drug effect plus the real-data vitals model.

Vital signs (the endpoints of ``VitalsModel``: SBP, DBP, MAP, HR; natural units = model
scale)::

    forecast(now + h) = d(now + h) + VitalsModel(readings - d)(now + h),
    d(t) = effect(t) - effect(now)

``effect(t) = twin(scenario)(t) - twin(scenario untreated)(t)`` with the cohort's median
parameters (as ``PopulationTwin``): the vitals model, learnt on real ICU stays, follows what
the twin does not model (illness, fluids, variability) and a what-if regimen moves the
forecast by its mechanistic effect. Anchored at now (``anchor_now``): the vitals model sees
the readings as on today's drug effect, i.e. the patient's level as measured, like the
treated and untreated ICU patients it was learnt on, not his untreated counterfactual level;
its 24 h forecast draws the level toward its ICU mean (SBP ~123 mmHg, ~0.24 of the distance
at 24 h with 4-hourly readings), so which level it sees matters. Unanchored (``effect``
instead of ``d``) that draw acts on the untreated level of the simulated patients (SBP ~143
mmHg), a -4 mmHg SBP 24 h bias; anchored, the SBP 24 h MAE falls 0.2-0.7 mmHg in the
simulated worlds (two 96-patient cohorts; as-built 5.44 -> 4.80 on seed 2026; the step world
on seed 7 is unchanged, +0.03). Without a drug (effect 0, the real-data stays) both are the
vitals model exactly. Where SBP and DBP but no MAP were measured, a MAP reading
DBP + (SBP - DBP) / 3 is derived. Spread: the vitals model's SD of the next measured reading;
its real-data normalised conformal scores are the vitals rows of the engine's table
(``hybrid_table``). Other endpoints (RAS peptides, renin, ACE inhibition, drug level): the
windowed population twin's trajectory; their rows are simulated-calibration residuals, not
normalised (the engine's scale there is 1 and unused).

Drug sensitivity (optional, ``gain_sd > 0``; off by default): per patient and vital endpoint
the effect is scaled by a gain ``g`` learnt from his own readings, ``reading = level + g *
effect(t) + noise`` with ``g ~ N(1, gain_sd^2)`` (``drug_gain``: conjugate regression on the
readings in the window, O(readings)); ``d`` above becomes ``g * d``. Without a drug (effect
0) ``g = 1`` exactly. Off: it did not help in the simulated worlds (see ``GAIN_SD``).

Bounded window: the twin runs over ``[w0, now_h + 72]`` only, ``w0 = now_h - WINDOW_H``
rounded down to whole days (keeps the glucose profile's phase; ``w0 < 0`` for short stays,
which are then simulated exactly), from the untreated steady state at ``w0``: doses before
``w0`` are dropped, an infection under way at ``w0`` restarts there. The diacid of doses 96 h
back is gone for ACE inhibitors with normal elimination (half-lives 1-12 h); what remains is
the slow pressure response: for benazepril 10 mg daily over 30 days the SBP effect at now is
-4.2 mmHg windowed vs -5.0 mmHg fully simulated (test: within 1 mmHg). Slow elimination
(lisinopril with impaired renal function, half-life ~115 h) is under-stated.
Cost: one batched simulation (treated, untreated) of 168-192 h whatever the length of the
stay, then a Kalman filter over ``VitalsModel``'s window of readings. Simulations are memoised
per (window-shifted scenario, window length): new readings of the same patient on the same
day of the stay do not re-simulate.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from twin.forecast.calibrate import personal_prior
from twin.forecast.cohort import ParameterPrior
from twin.forecast.conformal import ConformalTable
from twin.forecast.endpoints import INDEX, NAMES, to_model_scale
from twin.forecast.engines import LEAD_H, Engine
from twin.forecast.features import Case
from twin.forecast.vitals_model import VitalsModel
from twin.scenario import MAX_DOSE_MG, Regimen
from twin.simulate import simulate

WINDOW_H = 96.0  # hours of the past the twin simulates (rounded down to whole days)
#: solver tolerance: against rtol 1e-4 the SBP effect is within 0.05 mmHg and ACE inhibition
#: within 0.1 points over the 72 h (benazepril daily), with a quarter of the solver steps
TWIN_RTOL = 2e-2
#: simulations kept per engine (one per patient-day and regimen; an entry ~20 kB)
SIM_CACHE_SIZE = 256
#: the shipped real-data tables hold the 0.8 / 0.9 / 0.95 quantiles (``VitalsModel.scores``)
THREE_POINT_LEVELS = np.array([0.8, 0.9, 0.95])
#: default prior SD of the patient's drug-sensitivity gain g ~ N(1, GAIN_SD^2); 0: g = 1
#: (off). The virtual patients' true gain (true / population effect): mean 1.05, SD 0.43;
#: learnt with GAIN_SD 0.5 it correlates 0.6 with it, but on top of the anchor the SBP 24 h
#: MAE moved -0.24..+0.08 mmHg by world and cohort (mean -0.04; the step world gained most)
GAIN_SD = 0.0
#: the gain is kept in [0, GAIN_MAX] (a drug does not raise the pressure it lowers)
GAIN_MAX = 3.0
#: default: the effect is anchored at now (see the module)
ANCHOR_NOW = True
#: the latest simulation runs: (hours simulated, solver steps), a deterministic cost measure
SIMULATION_COST: deque[tuple[float, int]] = deque(maxlen=64)


def window_start(now_h: float, window_h: float = WINDOW_H) -> float:
    """Start of the simulated window (hours): ``now_h - window_h`` rounded down to a whole
    day. It may be negative: before t = 0 the patient is at the untreated steady state, so a
    short stay is simulated exactly and every window has the same length (cost)."""
    return math.floor((now_h - window_h) / 24.0) * 24.0


def regimen_from_doses(drug: str, doses: Sequence[tuple[float, float]]) -> Regimen:
    """A regimen giving exactly these ``(time_h, mg)`` doses (same-time doses summed, capped at
    MAX_DOSE_MG): one ``then`` link per run of equal doses."""
    merged: dict[float, float] = {}
    for t, mg in doses:
        if mg > 0:
            merged[round(float(t), 9)] = min(merged.get(round(float(t), 9), 0.0) + mg, MAX_DOSE_MG)
    runs: list[tuple[float, list[float]]] = []
    for t in sorted(merged):
        if runs and runs[-1][0] == merged[t]:
            runs[-1][1].append(t)
        else:
            runs.append((merged[t], [t]))
    reg: Regimen | None = None
    for mg, ts in reversed(runs):
        reg = Regimen(drug=drug, dose_mg=mg, interval_h=168.0, n_doses=1, start_h=ts[0],
                      extra_doses_h=tuple(ts[1:]), then=reg)
    return reg or Regimen(drug=drug, dose_mg=0.0)


def shifted_scenarios(scenario: Any, w0: float, end_h: float) -> tuple[Any, Any]:
    """(treated, untreated) scenarios on the window's clock (t = 0 at ``w0``) up to ``end_h``
    (hours on the scenario's clock)."""
    reg = scenario.regimen
    doses = [(t - w0, mg) for t, mg in reg.dose_times_h(end_h) if t >= w0]
    infected = bool(scenario.infected and float(scenario.infection_onset_h) < float(end_h))
    onset = max(0.0, scenario.infection_onset_h - w0) if infected else 0.0
    treated = replace(scenario, regimen=regimen_from_doses(reg.active_drug, doses),
                      infected=infected, infection_onset_h=onset)
    return treated, replace(treated, regimen=Regimen(drug=reg.active_drug, dose_mg=0.0))


def drug_gain(effect: np.ndarray, y: np.ndarray, noise_var: float,
              gain_sd: float | None = None) -> float:
    """Posterior mean of the gain ``g`` in ``y_k = b + g * effect_k + e_k`` (natural units):
    flat prior on the level ``b``, ``g ~ N(1, gain_sd^2)``, ``e_k ~ N(0, noise_var)``
    (units^2; ``gain_sd`` default GAIN_SD), clipped to ``[0, GAIN_MAX]``. Exactly 1.0 when
    the effect does not vary over the readings (no drug, or fewer than 2 readings)."""
    gain_sd = GAIN_SD if gain_sd is None else float(gain_sd)
    de = np.asarray(effect, dtype=np.float64)
    dy = np.asarray(y, dtype=np.float64)
    if len(dy) < 2 or gain_sd <= 0.0:
        return 1.0
    de, dy = de - de.mean(), dy - dy.mean()
    sxx = float(de @ de)
    if sxx <= 0.0:
        return 1.0
    p0 = 1.0 / gain_sd**2
    g = (p0 + float(de @ dy) / noise_var) / (p0 + sxx / noise_var)
    return float(np.clip(g, 0.0, GAIN_MAX))


def _history(case: Case, endpoints: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Readings per vital endpoint (natural units); MAP readings are derived as
    DBP + (SBP - DBP) / 3 at the times with SBP and DBP but no measured MAP."""
    by: dict[str, dict[float, float]] = {ep: {} for ep in (*endpoints, "sbp_mmhg", "dbp_mmhg")}
    for o in case.observations:
        if o.endpoint in by:
            by[o.endpoint][float(o.time_h)] = float(o.value)
    if "map_mmhg" in endpoints:
        for t in set(by["sbp_mmhg"]) & set(by["dbp_mmhg"]):
            by["map_mmhg"].setdefault(t, by["dbp_mmhg"][t] + (by["sbp_mmhg"][t]
                                                              - by["dbp_mmhg"][t]) / 3.0)
    out = {}
    for ep in endpoints:
        t = np.array(sorted(by[ep]), dtype=np.float64)
        out[ep] = (t, np.array([by[ep][x] for x in t], dtype=np.float64))
    return out


class HybridTwin(Engine):
    """Mechanistic drug effect (population twin) + real-data vitals model; see the module."""

    name = "hybrid_twin"

    def __init__(self, prior: ParameterPrior, vitals: VitalsModel,
                 window_h: float = WINDOW_H, gain_sd: float | None = None,
                 anchor_now: bool | None = None) -> None:
        self.prior, self.vitals, self.window_h = prior, vitals, float(window_h)
        #: prior SD of the drug-sensitivity gain (``drug_gain``; 0 = off)
        self.gain_sd = GAIN_SD if gain_sd is None else float(gain_sd)
        #: the vitals model sees the readings on today's effect (``ANCHOR_NOW``)
        self.anchor_now = ANCHOR_NOW if anchor_now is None else bool(anchor_now)
        #: the vitals model's endpoints that are forecast endpoints (natural = model scale)
        self.vital_endpoints = tuple(ep for ep in vitals.endpoints if ep in INDEX)
        self._sims: OrderedDict[Hashable, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        """Forget the memoised simulations (benchmarks time a truly cold forecast)."""
        with self._lock:
            self._sims.clear()

    def _simulate(self, case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w0 = window_start(case.now_h, self.window_h)
        end = case.now_h + LEAD_H[-1]
        treated, untreated = shifted_scenarios(case.scenario, w0, end)
        # an hourly grid on the window's clock: the same (shifted) scenario on the same
        # length of window reuses the simulation, whatever now_h or the readings
        grid = np.arange(0.0, math.ceil(end - w0 - 1e-9) + 1.0)
        key = (treated, untreated, len(grid))
        with self._lock:
            hit = self._sims.get(key)
            if hit is not None:
                self._sims.move_to_end(key)
        if hit is None:
            vals = personal_prior(self.prior, case.scenario).to_natural(
                np.zeros(len(self.prior.names)))
            ov = {n: torch.tensor([vals[j]] * 2, dtype=torch.float64)
                  for j, n in enumerate(self.prior.names)}
            with torch.no_grad():
                res = simulate([treated, untreated], grid, overrides=ov, rtol=TWIN_RTOL)
            traj = np.stack([res.endpoints[n].numpy() for n in NAMES], axis=1)  # [2, E, T]
            hit = (traj[0], traj[0] - traj[1])
            SIMULATION_COST.append((float(grid[-1]), int(res.stats.steps)))
            with self._lock:
                self._sims[key] = hit
                while len(self._sims) > SIM_CACHE_SIZE:
                    self._sims.popitem(last=False)
        return grid + w0, hit[0], hit[1]

    def _noise_var(self, endpoint: str) -> float:
        """Scatter of the readings about the patient's level (units^2) for ``drug_gain``: the
        vitals model's fast deviation plus measurement noise, as learnt on real ICU data."""
        p = self.vitals.params[endpoint]
        return float(p.v_f + p.r)

    def residuals(self, case: Case, grid: np.ndarray, effect: np.ndarray
                  ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, float],
                             dict[str, float]]:
        """The vitals model's history ``{endpoint: (times_h, readings - g * effect)}`` and the
        patient's drug-sensitivity gains ``{endpoint: g}`` (1.0 without a drug), learnt from
        the readings in the simulated window; before it the effect is taken as at its start
        (np.interp clamps)."""
        hist, gain, ref = {}, {}, {}
        for ep, (t, y) in _history(case, self.vital_endpoints).items():
            e = np.interp(t, grid, effect[INDEX[ep]])
            inside = (t >= grid[0]) & (t <= case.now_h)
            gain[ep] = drug_gain(e[inside], y[inside], self._noise_var(ep), self.gain_sd)
            ref[ep] = float(np.interp(case.now_h, grid, effect[INDEX[ep]])) \
                if self.anchor_now else 0.0
            hist[ep] = (t, y - gain[ep] * (e - ref[ep]))
        return hist, gain, ref

    def mechanistic(self, cases: Sequence[Case]) -> list[tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]]:
        """Per case ``(grid_h, treated [E, T], effect [E, T])`` in natural units on an hourly
        grid of the scenario's clock covering ``[w0, now_h + 72]``."""
        return [self._simulate(c) for c in cases]

    def predict_batch(self, cases: Sequence[Case]) -> np.ndarray:
        return self.predict_with_scale(cases)[0]

    def predict_with_scale(self, cases: Sequence[Case]) -> tuple[np.ndarray, np.ndarray]:
        """Medians ``[B, E, L]`` (model scale) and the vitals model's SD on the vitals (1
        elsewhere) at now_h + LEAD_H."""
        med = np.empty((len(cases), len(NAMES), len(LEAD_H)))
        scale = np.ones_like(med)
        for b, (case, (grid, treated, effect)) in enumerate(
                zip(cases, self.mechanistic(cases), strict=True)):
            at = case.now_h + LEAD_H
            med[b] = to_model_scale(np.stack([np.interp(at, grid, row) for row in treated]),
                                    axis=0)
            hist, gain, ref = self.residuals(case, grid, effect)
            sex = getattr(case.scenario, "sex", None)
            pred = self.vitals.predict(hist, case.now_h, LEAD_H,
                                       age=getattr(case.scenario, "age_years", None), sex=sex)
            for ep in self.vital_endpoints:
                mu, sd = pred[ep]
                i = INDEX[ep]
                med[b, i] = mu + gain[ep] * (np.interp(at, grid, effect[i]) - ref[ep])
                scale[b, i] = sd
        return med, scale

    def state(self) -> dict[str, Any]:
        return {"prior": self.prior.to_dict(), "vitals": self.vitals.doc,
                "window_h": self.window_h, "gain_sd": self.gain_sd,
                "anchor_now": self.anchor_now}

    @classmethod
    def from_bundle(cls, state: dict[str, Any], weights: dict[str, Any], normaliser: Any,
                    config: dict[str, Any]) -> Engine:
        """Rebuild the engine from its stored state (see ``twin.forecast.registry``)."""
        return cls(ParameterPrior.from_dict(state["prior"]), VitalsModel(state["vitals"]),
                   float(state.get("window_h", WINDOW_H)), state.get("gain_sd"),
                   state.get("anchor_now"))


def score_levels(m: int, three_point: bool = False) -> np.ndarray:
    """Coverage level of each of ``m`` sorted scores: the k-th of m is the k / (m + 1)
    quantile (split-conformal ranks); ``three_point``: the shipped real-data tables' three
    scores are the 0.8, 0.9 and 0.95 quantiles (``VitalsModel.scores``)."""
    return THREE_POINT_LEVELS if three_point and m == 3 else np.arange(1, m + 1) / (m + 1)


def resample_scores(scores: np.ndarray, n: int, levels: np.ndarray | None = None) -> np.ndarray:
    """Sorted scores ``[..., m]`` at coverage ``levels [m]`` (default k / (m + 1)) ->
    ``[..., n]`` by quantile interpolation: the j-th new score is the source's score at level
    j / (n + 1) (constant beyond the source's levels), so the table's conformal rank
    ceil((n + 1) c) reads the source near its c quantile."""
    src = np.sort(np.asarray(scores, dtype=np.float64), axis=-1)
    lv = score_levels(src.shape[-1]) if levels is None else np.asarray(levels, dtype=np.float64)
    target = np.arange(1, n + 1) / (n + 1)
    flat = src.reshape(-1, src.shape[-1])
    out = np.stack([np.interp(target, lv, row) for row in flat])
    return out.reshape(*src.shape[:-1], n)


def hybrid_table(vitals: VitalsModel, residuals: np.ndarray,
                 lead_h: np.ndarray = LEAD_H) -> ConformalTable:
    """The hybrid twin's ConformalTable on ``lead_h``: vitals rows from the real-data normalised
    scores (``VitalsModel.scores``; leads outside its grid take the nearest lead's scores),
    the others from the simulated-calibration ``residuals [n, E, L]`` (model scale, not
    normalised). Every row is resampled to the largest n (``resample_scores``). One table for
    any sampling: the real-data sparse (4-hourly) normalised scores are within 0-9 % of the
    full-sampling ones (HR at 1 h the most; the SD already widens with fewer readings)."""
    r = np.sort(np.abs(np.moveaxis(np.asarray(residuals, dtype=np.float64), 0, -1)), axis=-1)
    rows = {i: (r[i], score_levels(r.shape[-1])) for i in range(len(NAMES))}  # [L, m] each
    vital = [ep for ep in vitals.endpoints if ep in INDEX]
    for ep in vital:
        leads, sc = vitals.scores(ep)
        rows[INDEX[ep]] = (np.stack([np.interp(lead_h, leads, col) for col in sc.T], axis=-1),
                           score_levels(sc.shape[-1], three_point=True))
    n = max(row.shape[-1] for row, _ in rows.values())
    scores = np.stack([resample_scores(row, n, lv) for row, lv in
                       (rows[i] for i in range(len(NAMES)))])
    norm = np.array([name in vital for name in NAMES])
    return ConformalTable(np.asarray(lead_h, dtype=np.float64), scores, norm)
