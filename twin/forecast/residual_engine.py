"""The state space + residual network on a whole cohort: training on the train split and the
grid engine that ``twin.forecast.evaluate_real`` scores (``engine(endpoint, Y, horizons)``).

A cohort's readings go on an hourly grid per endpoint (``cohort_grids``); the history may be
thinned (``thin_h``) exactly as the evaluation thins it, targets never are.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from twin.forecast.aci import aci_grid
from twin.forecast.evaluate_real import grid, thin
from twin.forecast.residual import (
    AUX,
    TRAIN_HORIZONS,
    VITALS,
    Summaries,
    features,
    grid_summaries,
    net_from_state,
    net_state,
    predict_net,
    train_net,
)
from twin.forecast.state_space import SSParams, filter_grid
from twin.realdata.loader import Cohort

GRID_ENDPOINTS = VITALS + tuple(e for e, _, _ in AUX)


class CohortGrids:
    """Hourly grids, summaries and static covariates of one cohort (history thinned)."""

    def __init__(self, cohort: Cohort, pad: int, thin_h: float | None = None) -> None:
        self.full = {e: grid(cohort, e, pad) for e in GRID_ENDPOINTS}
        self.T = self.full[VITALS[0]].shape[1]
        self.hist = {e: thin(y, thin_h) for e, y in self.full.items()}
        self.summ: dict[str, Summaries] = {e: grid_summaries(y) for e, y in self.hist.items()}
        self.age = np.array([s.age for s in cohort.stays], dtype=np.float64)
        self.male = np.array([s.sex == "Male" for s in cohort.stays], dtype=np.float64)

    def state_space(self, params: dict[str, SSParams], horizons) -> dict:
        """``{endpoint: (mu, sd, z)}``: forecasts ``[S, T, H]`` and innovations ``[S, T]``."""
        return {e: filter_grid(self.hist[e], params[e], horizons, innovations=True)
                for e in VITALS}

    def X(self, target: str, j: int, h: float, ss: dict, ii: np.ndarray, tt: np.ndarray):
        mu = {e: ss[e][0][ii, tt, j] for e in VITALS}
        return features(target, np.full(len(ii), float(h)), mu, ss[target][1][ii, tt, j],
                        self.summ, (ii, tt), tt.astype(float), self.age[ii], self.male[ii])


def _training_rows(g: CohortGrids, target: str, ss: dict, horizons, rng, per_h: int):
    Xs, rs = [], []
    seen = g.summ[target].count > 0
    for j, h in enumerate(horizons):
        ii, tt = np.nonzero(seen[:, : g.T - h] & np.isfinite(g.full[target][:, h:]))
        if len(ii) > per_h:
            pick = rng.choice(len(ii), per_h, replace=False)
            ii, tt = ii[pick], tt[pick]
        Xs.append(g.X(target, j, h, ss, ii, tt))
        rs.append(g.full[target][ii, tt + h] - ss[target][0][ii, tt, j])
    return np.concatenate(Xs), np.concatenate(rs)


def _holdout(stay_id: int) -> bool:
    """About 15 % of the train stays, by a hash of the stay id: the early-stopping set."""
    return int.from_bytes(hashlib.sha256(f"val:{stay_id}".encode()).digest()[:8], "big") \
        < 0.15 * 2**64


def _rows(cohort: Cohort, sp: dict, target: str, rng, per_h: int):
    parts = []
    for thin_h in (None, 4):
        g = CohortGrids(cohort, max(TRAIN_HORIZONS), thin_h)
        parts.append(_training_rows(g, target, g.state_space(sp, TRAIN_HORIZONS),
                                    TRAIN_HORIZONS, rng, per_h))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def fit_residual(train: Cohort, params: dict[str, dict], *, epochs: int = 8,
                 rows_per_horizon: int = 20000, seed: int = 0, log=None) -> dict[str, dict]:
    """Train one ResidualNet per vital sign on the train cohort: origins every hour, every
    horizon of TRAIN_HORIZONS, history both complete and thinned to one reading per 4 h
    (ward-like); at most ``rows_per_horizon`` origins per horizon and sampling. About 15 %
    of the train stays (``_holdout``) pick the epoch. Returns ``{endpoint: weights}``."""
    rng = np.random.default_rng(seed)
    sp = {e: SSParams(**params[e]) for e in VITALS}
    fit_on = replace(train, stays=[s for s in train.stays if not _holdout(s.stay_id)])
    held = replace(train, stays=[s for s in train.stays if _holdout(s.stay_id)])
    out = {}
    for target in VITALS:
        X, r = _rows(fit_on, sp, target, rng, rows_per_horizon)
        val = _rows(held, sp, target, rng, rows_per_horizon)
        if log:
            log(f"{target}: {len(r)} training rows ({len(fit_on)} stays), "
                f"{len(val[1])} held-out rows ({len(held)} stays)")
        out[target] = net_state(train_net(X, r, epochs=epochs, seed=seed, val=val, log=log))
    return out


def residual_engine(doc: dict, cohort: Cohort, thin_h: float | None):
    """The grid engine ``engine(endpoint, Y, horizons) -> (mu, scale)`` of the state space +
    residual networks of ``doc`` (a params document) on ``cohort`` with history thinned as
    ``thin_h``, the scale adapted per patient (``twin.forecast.aci``, ``doc["aci_gamma"]``).
    ``Y`` is the evaluation's own (thinned) grid of the endpoint, used to check
    that both see the same readings."""
    sp = {e: SSParams(**doc["params"][e]) for e in VITALS}
    nets = {e: net_from_state(w) for e, w in doc["residual"].items()}
    gamma = float(doc.get("aci_gamma", 0.0))
    cache: dict[int, CohortGrids] = {}

    def engine(endpoint, Y, horizons):
        pad = Y.shape[1] - (int(max((s.end_h for s in cohort.stays), default=0)) + 1)
        g = cache.setdefault(pad, CohortGrids(cohort, pad, thin_h))
        if not np.array_equal(np.isfinite(Y), np.isfinite(g.hist[endpoint])):
            raise ValueError("residual engine: the grid differs from the evaluation's")
        ss = g.state_space(sp, horizons)
        mu, b = ss[endpoint][0].copy(), ss[endpoint][1].copy()
        ii, tt = np.nonzero(g.summ[endpoint].count > 0)
        factor = np.exp(aci_grid(ss[endpoint][2], gamma)[ii, tt])
        for j, h in enumerate(horizons):
            d, scale = predict_net(nets[endpoint], g.X(endpoint, j, h, ss, ii, tt))
            mu[ii, tt, j] += d
            b[ii, tt, j] = scale * factor
        return mu, b
    return engine
