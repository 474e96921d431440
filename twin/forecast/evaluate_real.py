"""Score forecasters on a real cohort against the *measured* reading at origin + horizon.

Origins are every ``every_h`` hours from hour ``min_history_h`` (since admission) while the
stay lasts and the endpoint has at least one reading at or before the origin; a forecast at
origin t uses only readings at hours <= t. ``thin_h`` keeps at most one reading per
``thin_h`` hours of history (scanning forward from admission: a reading is kept if it is at
least ``thin_h`` h after the last kept one), ward-like sampling; targets are never thinned.
An origin whose target hour has no valid reading is skipped and counted (``skipped``).

An engine is a callable ``engine(endpoint, Y, horizons) -> (mu, scale)`` on an hourly grid
``Y`` (stays x hours, NaN = not measured), both outputs (stays x hours x horizons): the
forecast made at hour t for hour t + h and its scale. Intervals are ``mu +- q * scale`` with
``q`` from a split-conformal table ``{endpoint: {h: {level: q, "by_age": {band: {level: q}}}}}``
fitted on the calibration split (``conformal_table``); with ``mondrian=True`` the
quantile of the stay's age band is used (group-conditional split conformal; on the eICU
demo it did not improve the <50 band, see docs/realdata.md, so the default is pooled).
"""

from __future__ import annotations

import numpy as np

from twin.forecast.residual import grid_summaries
from twin.forecast.state_space import SSParams, filter_grid
from twin.realdata.loader import Cohort

EVAL_ENDPOINTS: tuple[str, ...] = ("sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm")
LEVELS: tuple[float, ...] = (0.8, 0.9, 0.95)


def grid(cohort: Cohort, endpoint: str, pad: int = 0) -> np.ndarray:
    T = int(max((s.end_h for s in cohort.stays), default=0)) + 1 + pad
    Y = np.full((len(cohort.stays), T), np.nan)
    for i, s in enumerate(cohort.stays):
        t = s.times.get(endpoint, np.empty(0))
        if len(t):
            Y[i, np.round(t).astype(int)] = s.values[endpoint]
    return Y


def thin(Y: np.ndarray, thin_h: float | None) -> np.ndarray:
    if not thin_h:
        return Y
    out = np.full_like(Y, np.nan)
    for i in range(Y.shape[0]):
        last = -np.inf
        for t in np.flatnonzero(np.isfinite(Y[i])):
            if t - last >= thin_h:
                out[i, t] = Y[i, t]
                last = t
    return out


# ------------------------------------------------------------------------------- baselines
def _last_k_mean(Y: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` (1, 3 or 12) readings at hours <= t, ``[S, T]`` (NaN: none)."""
    s = grid_summaries(Y)
    return {1: s.last, 3: s.mean3, 12: s.mean12}[k]


#: |last reading - mean of the last 12| above this (natural units) marks a patient whose
#: readings are changing at the forecast origin (known then): the "change:yes" subgroup.
CHANGE_THRESHOLD = {"sbp_mmhg": 15.0, "dbp_mmhg": 10.0, "map_mmhg": 10.0, "hr_bpm": 10.0}


def recent_change(Y: np.ndarray, endpoint: str) -> np.ndarray:
    """``"yes"``/``"no"`` per (stay, hour): is the patient's recent value drifting?"""
    with np.errstate(invalid="ignore"):
        big = np.abs(_last_k_mean(Y, 1) - _last_k_mean(Y, 12)) > CHANGE_THRESHOLD[endpoint]
    return np.where(big, "yes", "no")


def baseline(k: int):
    def engine(endpoint, Y, horizons):
        m = _last_k_mean(Y, k)
        mu = np.repeat(m[:, :, None], len(horizons), axis=2)
        return mu, np.ones_like(mu)
    return engine


BASELINES = {"persistence": baseline(1), "mean3": baseline(3), "mean12": baseline(12)}


def state_space_engine(params: dict[str, dict]):
    def engine(endpoint, Y, horizons):
        return filter_grid(Y, SSParams(**params[endpoint]), horizons)
    return engine


# ------------------------------------------------------------------------------- scoring
def _pairs(cohort, Y_full, horizons, every_h, min_history_h):
    """(stay index, origin hour, horizon index) arrays of the scored pairs, and counts."""
    S, T = Y_full.shape
    ends = np.array([s.end_h for s in cohort.stays])
    seen = np.cumsum(np.isfinite(Y_full), axis=1) > 0
    origins = np.arange(int(np.ceil(min_history_h / every_h)) * every_h, T, every_h)
    origins = origins[origins >= min_history_h]
    out, skipped = [], {}
    for j, h in enumerate(horizons):
        ii, tt = np.meshgrid(np.arange(S), origins, indexing="ij")
        ok = (tt <= ends[:, None]) & seen[ii, tt]
        ii, tt = ii[ok], tt[ok]
        inside = tt + h < T
        has = np.zeros_like(ii, dtype=bool)
        has[inside] = np.isfinite(Y_full[ii[inside], tt[inside] + h])
        skipped[h] = int((~has).sum())
        out.append((ii[has], tt[has], j))
    return out, skipped


#: Levels of the stored score grid (k / 200, k = 1..199): any coverage can be asked later.
GRID_LEVELS = tuple(k / 200 for k in range(1, 200))


def _quantiles(s, levels, grid: bool = False):
    s = np.sort(s)
    n = len(s)

    def q(a):
        return float(s[min(n - 1, int(np.ceil((n + 1) * a)) - 1)]) if n else float("nan")
    out = {str(a): q(a) for a in levels}
    if grid:
        out["grid"] = [round(q(a), 5) for a in GRID_LEVELS]
    return out


def conformal_table(cohort, engines, horizons=(1, 4, 12, 24), every_h=1, min_history_h=1,
                    thin_h=None, endpoints=EVAL_ENDPOINTS, levels=LEVELS, grid_engines=()):
    """Split conformal quantiles of |y - mu| / scale, per engine, endpoint and horizon.
    Origins every hour on the calibration cohort (more scores; exchangeable by patient).
    The engines named in ``grid_engines`` also store the score quantile grid (GRID_LEVELS)."""
    table = {name: {} for name in engines}
    for ep in endpoints:
        Y = grid(cohort, ep, pad=max(horizons))
        Yh = thin(Y, thin_h)
        pairs, _ = _pairs(cohort, Y, horizons, every_h, min_history_h)
        for name, eng in engines.items():
            mu, sc = eng(ep, Yh, horizons)
            table[name][ep] = {}
            for ii, tt, j in pairs:
                h = horizons[j]
                s = np.abs(Y[ii, tt + h] - mu[ii, tt, j]) / sc[ii, tt, j]
                fin = np.isfinite(s)
                entry = _quantiles(s[fin], levels, grid=name in grid_engines)
                bands = np.array([st.age_band for st in cohort.stays])[ii][fin]
                entry["by_age"] = {b: _quantiles(s[fin][bands == b], levels)
                                   for b in ("<50", "50-69", ">=70")}
                table[name][ep][str(h)] = entry
    return table


def evaluate_real(cohort: Cohort, forecaster_fn=None, horizons=(1, 4, 12, 24), every_h=6,
                  min_history_h=6, thin_h=None, *, engines=None, table=None,
                  endpoints=EVAL_ENDPOINTS, default_engine="state_space", model_version=None,
                  mondrian=False):
    """Score ``forecaster_fn`` (as ``default_engine``) and the baselines on ``cohort``."""
    engines = dict(engines or {})
    if forecaster_fn is not None:
        engines[default_engine] = forecaster_fn
    for k, v in BASELINES.items():
        engines.setdefault(k, v)
    horizons = tuple(int(h) for h in horizons)
    results = {name: {} for name in engines}
    subgroups = {name: {} for name in engines}
    skipped = {}
    bands = np.array([s.age_band for s in cohort.stays])
    sexes = np.array([s.sex or "unknown" for s in cohort.stays])
    for ep in endpoints:
        Y = grid(cohort, ep, pad=max(horizons))
        Yh = thin(Y, thin_h)
        pairs, skip = _pairs(cohort, Y, horizons, every_h, min_history_h)
        skipped[ep] = {str(h): skip[h] for h in horizons}
        changing = recent_change(Yh, ep)
        for name, eng in engines.items():
            mu, sc = eng(ep, Yh, horizons)
            results[name][ep], subgroups[name][ep] = {}, {}
            for ii, tt, j in pairs:
                h = horizons[j]
                y, m, s = Y[ii, tt + h], mu[ii, tt, j], sc[ii, tt, j]
                err = y - m
                q = (table or {}).get(name, {}).get(ep, {}).get(str(h), {})
                if mondrian and "by_age" in q:   # group-conditional (Mondrian) by age band
                    qa = {a: np.array([q["by_age"].get(b, q)[a] for b in bands[ii]])
                          for a in map(str, LEVELS) if a in q}
                else:
                    qa = {a: q[a] for a in map(str, LEVELS) if a in q}
                cov = {a: (np.abs(err) <= qa[a] * s) if a in qa else None for a in map(str, LEVELS)}
                results[name][ep][str(h)] = {
                    "n": len(err),
                    "mae": float(np.mean(np.abs(err))) if len(err) else None,
                    "rmse": float(np.sqrt(np.mean(err**2))) if len(err) else None,
                    "coverage": {a: (float(c.mean()) if c is not None and len(c) else None)
                                 for a, c in cov.items()},
                    "width": {"0.9": (float(np.mean(2 * qa["0.9"] * s))
                                      if "0.9" in qa and len(s) else None)},
                }
                if cov["0.9"] is not None:
                    g = {}
                    for label, keys in (("age", bands[ii]), ("sex", sexes[ii]),
                                        ("change", changing[ii, tt])):
                        for key in sorted(set(keys)):
                            sel = keys == key
                            g[f"{label}:{key}"] = {"n": int(sel.sum()),
                                                   **{a: float(cov[a][sel].mean()) for a in cov}}
                    subgroups[name][ep][str(h)] = g
    return {
        "data": cohort.directory,
        "stays": len(cohort.stays),
        "model_version": model_version,
        "default_engine": default_engine,
        "horizons": list(horizons),
        "every_h": every_h, "min_history_h": min_history_h, "thin_h": thin_h,
        "rejected": cohort.rejected,
        "counts": cohort.counts,
        "skipped_no_target": skipped,
        "conformal": "mondrian-by-age-band" if mondrian else "pooled",
        "results": results,
        "subgroup_coverage": subgroups,
    }
