"""Beat-resolved arterial pressure: time-varying-elastance left ventricle + 3-element Windkessel.

Ventricle (Suga & Sagawa 1974; Stergiopulos et al. 1996 style): P_lv = E(t) (V - V0) with
E(t) = Emin + (Emax - Emin) e(t mod T), a raised-cosine activation over systole. Mitral and
aortic valves are ideal diodes with small resistances. Arterial load: 3-element Windkessel
(Westerhof et al. 2009): P_ao = P_c + Zc Q_ao, C dP_c/dt = Q_ao - P_c / R.
Peripheral resistance R and compliance C are tuned (fixed-point iterations) so the simulated
beat reproduces the twin's MAP and pulse pressure at the requested time; HR sets the period.
Units: mmHg, mL, s.
"""

from __future__ import annotations

import math

import numpy as np

from twin.errors import ScenarioError
from twin.scenario import Scenario
from twin.simulate import simulate

E_MAX, E_MIN, V0 = 2.5, 0.06, 10.0  # mmHg/mL, mmHg/mL, mL
Z_C, R_AV, R_MV, P_VEN = 0.05, 0.004, 0.01, 8.0  # mmHg s/mL, mmHg s/mL, mmHg s/mL, mmHg
_DT = 5e-4  # internal explicit step (s)


def _activation(tau: np.ndarray, period: float) -> np.ndarray:
    """Normalised elastance e in [0, 1]: raised cosine over systole, then relaxation."""
    ts = 0.2 + 0.15 * period  # systolic duration (s)
    e = np.zeros_like(tau)
    up = tau < ts
    e[up] = 0.5 * (1.0 - np.cos(math.pi * tau[up] / ts))
    down = (tau >= ts) & (tau < 1.5 * ts)
    e[down] = 0.5 * (1.0 + np.cos(math.pi * (tau[down] - ts) / (0.5 * ts)))
    return e


def _beats(hr: float, r: float, c: float, n_beats: int) -> tuple[np.ndarray, np.ndarray]:
    """Integrate n_beats; return (time s, aortic pressure mmHg) on the internal grid."""
    period = 60.0 / hr
    n = round(n_beats * period / _DT)
    t = np.arange(n) * _DT
    elast = E_MIN + (E_MAX - E_MIN) * _activation(np.mod(t, period), period)
    v, pc = 120.0, 80.0
    p_ao = np.empty(n)
    for i in range(n):
        p_lv = elast[i] * (v - V0)
        q_mv = max(P_VEN - p_lv, 0.0) / R_MV
        q_ao = max(p_lv - pc, 0.0) / (R_AV + Z_C)
        p_ao[i] = pc + Z_C * q_ao
        v += _DT * (q_mv - q_ao)
        pc += _DT * (q_ao - pc / r) / c
    return t, p_ao


def beat_pressure(map_mmhg: float, pp_mmhg: float, hr_bpm: float, beats: int = 3,
                  dt_s: float = 0.005) -> dict[str, np.ndarray | float]:
    """Arterial pressure over `beats` beats matching the given MAP, pulse pressure and HR."""
    r, c = 1.0, 1.5
    warm = 8
    for _ in range(6):
        t, p = _beats(hr_bpm, r, c, warm + 1)
        last = t >= warm * 60.0 / hr_bpm
        pp = float(p[last].max() - p[last].min())
        mean = float(p[last].min()) + pp / 3.0
        r *= map_mmhg / mean
        c *= (pp / pp_mmhg) ** 1.2
    t, p = _beats(hr_bpm, r, c, warm + beats)
    keep = t >= warm * 60.0 / hr_bpm
    t, p = t[keep] - t[keep][0], p[keep]
    grid = np.arange(0.0, t[-1], dt_s)
    wave = np.interp(grid, t, p)
    return {"time_s": grid, "arterial_pressure_mmhg": wave, "sbp_mmhg": float(wave.max()),
            "dbp_mmhg": float(wave.min()), "hr_bpm": float(hr_bpm),
            "map_mmhg": float(wave.mean())}


def _check_beats(beats: int, dt_s: float) -> None:
    if not (isinstance(beats, int) and 1 <= beats <= 20):
        raise ScenarioError("beats", f"must be an integer in [1, 20], got {beats!r}")
    if not (0.0005 <= dt_s <= 0.05):
        raise ScenarioError("dt_s", f"must be in [0.0005, 0.05], got {dt_s!r}")


def pressure_waveform(sbp_mmhg: float, dbp_mmhg: float, hr_bpm: float, beats: int = 3,
                      dt_s: float = 0.005) -> dict[str, np.ndarray | float]:
    """Arterial pressure over `beats` beats for a given SBP/DBP (mmHg) and HR (1/min).

    Used to draw a personalised patient's waveform from its own forecast at one time point.
    """
    _check_beats(beats, dt_s)
    if not (40.0 <= dbp_mmhg < sbp_mmhg <= 300.0):
        raise ScenarioError("sbp_mmhg/dbp_mmhg", f"need 40 <= DBP < SBP <= 300, got "
                         f"{sbp_mmhg!r}/{dbp_mmhg!r}")
    if not (20.0 <= hr_bpm <= 250.0):
        raise ScenarioError("hr_bpm", f"must be in [20, 250], got {hr_bpm!r}")
    return beat_pressure(dbp_mmhg + (sbp_mmhg - dbp_mmhg) / 3.0, sbp_mmhg - dbp_mmhg, hr_bpm,
                         beats, dt_s)


def waveform(scenario: Scenario, at_h: float, beats: int = 3, dt_s: float = 0.005,
             parameters: str = "clinical") -> dict[str, np.ndarray | float]:
    """Arterial pressure waveform of `scenario` at time `at_h` (h), for `beats` beats."""
    _check_beats(beats, dt_s)
    if not (0.0 <= at_h <= 24.0 * 365):
        raise ScenarioError("at_h", f"must be in [0, 8760], got {at_h!r}")
    times = [0.0, at_h] if at_h > 0 else [0.0]
    e = simulate(scenario, times, parameters=parameters).endpoints
    sbp, dbp = float(e["sbp_mmhg"][0, -1]), float(e["dbp_mmhg"][0, -1])
    hr = float(e["hr_bpm"][0, -1])
    return beat_pressure(dbp + (sbp - dbp) / 3.0, sbp - dbp, hr, beats, dt_s)
