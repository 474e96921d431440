"""The real-data model of a patient's vital signs (SBP, DBP, MAP, HR): what the twin does not
model (illness, fluids, ordinary variability), learnt on the eICU demo train split.

``VitalsModel.load()`` reads the shipped parameters (``twin/realdata/params.json``);
``predict(history, now_h, lead_h)`` gives, per endpoint, the median and the spread of the
*next measured reading* at ``now_h + lead_h`` from the readings at hours <= ``now_h`` only.
The values in ``history`` may be raw readings or readings minus a mechanistic effect (the
hybrid engine passes ``y - drug effect``); the model is the same.
``scores(endpoint)`` are the normalised split-conformal scores ``|y - mu| / sd`` measured on
the calibration split (sorted, per lead time), for building a ``ConformalTable``.

Cost: O(number of readings in the bounded window ``WINDOW_H``) per call, independent of the
length of the stay.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from twin.forecast.aci import aci_theta
from twin.forecast.residual import (
    AUX,
    VITALS,
    features,
    grid_summaries,
    net_from_state,
    predict_net,
)
from twin.forecast.state_space import PatientFilter, SSParams

PARAMS_PATH = Path(__file__).resolve().parents[1] / "realdata" / "params.json"
#: Readings older than this (hours before now) are not used: the slow component forgets
#: them (tau_s ~ 1 day) and the cost stays bounded for long stays.
WINDOW_H = 14 * 24.0
#: A median gap between the recent readings at or above this (hours) selects the
#: sparse-sampling (``--thin-h 4``) conformal table.
SPARSE_GAP_H = 3.0


class VitalsModel:
    """Per-patient forecasts of the vital signs learnt on real ICU stays: the state-space
    filter, corrected by the residual networks when the parameters carry them."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.version = str(doc.get("model_version", "state_space"))
        self.engine = str(doc.get("engine", "state_space"))
        self.params = {ep: SSParams(**p) for ep, p in doc["params"].items()}
        self.endpoints: tuple[str, ...] = tuple(self.params)
        self.nets = {ep: net_from_state(w) for ep, w in doc.get("residual", {}).items()}
        self.aci_gamma = float(doc.get("aci_gamma", 0.0))

    @classmethod
    def load(cls, path: str | Path | None = None) -> VitalsModel:
        return cls(json.loads(Path(path or PARAMS_PATH).read_text()))

    def _grid(self, history, now_h: float) -> dict[str, np.ndarray]:
        """One patient's hourly grid ``[1, W + 1]`` per endpoint, index W = now (the
        readings of an hour: the last one)."""
        w = int(WINDOW_H)
        out = {}
        for ep in VITALS + tuple(e for e, _, _ in AUX):
            t, y = history.get(ep, (np.empty(0), np.empty(0)))
            t, y = np.asarray(t, float), np.asarray(y, float)
            keep = (t <= now_h) & (t >= now_h - WINDOW_H) & np.isfinite(y)
            Y = np.full((1, w + 1), np.nan)
            order = np.argsort(t[keep], kind="stable")
            Y[0, w - np.round(now_h - t[keep][order]).astype(int)] = y[keep][order]
            out[ep] = Y
        return out

    def predict(self, history: dict[str, tuple[np.ndarray, np.ndarray]], now_h: float,
                lead_h: np.ndarray, *, age: float | None = None,
                sex: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{endpoint: (median, sd)}`` arrays like ``lead_h`` (hours after now_h), natural
        units, for every endpoint of the model; ``history[endpoint] = (times_h, values)``
        (hours since admission). Readings are placed on the hour (as in training); leads
        below 1 h take the 1 h forecast (the networks are trained from 1 h on). The spread
        is adapted to the patient's own one-step misses (``twin.forecast.aci``)."""
        lead = np.maximum(np.asarray(lead_h, dtype=np.float64), 1.0 if self.nets else 0.0)
        grid = self._grid(history, float(now_h))
        w = int(WINDOW_H)
        mu, sd, factor = {}, {}, {}
        for ep in self.endpoints:
            idx = np.flatnonzero(np.isfinite(grid[ep][0]))
            f = PatientFilter(self.params[ep], t0=float(idx[0]) if len(idx) else float(w))
            z = [f.update(float(k), float(grid[ep][0, k]))[0] for k in idx]
            factor[ep] = math.exp(aci_theta(z, self.aci_gamma))
            pairs = [f.forecast(w - f.t + h) for h in lead]
            mu[ep] = np.array([m for m, _ in pairs])
            sd[ep] = np.array([s for _, s in pairs])
        if not self.nets:
            return {ep: (mu[ep], sd[ep]) for ep in self.endpoints}
        summ = {ep: grid_summaries(y) for ep, y in grid.items()}
        n = len(lead)
        sel = (np.zeros(n, dtype=int), np.full(n, w))
        a = np.full(n, np.nan if age is None else float(age))
        male = np.full(n, 1.0 if sex in ("Male", "male", "M") else 0.0)
        out = {}
        for ep in self.endpoints:
            if ep not in self.nets or not np.isfinite(grid[ep]).any():
                out[ep] = (mu[ep], sd[ep])
                continue
            X = features(ep, lead, mu, sd[ep], summ, sel, np.full(n, float(now_h)), a, male)
            d, b = predict_net(self.nets[ep], X)
            out[ep] = (mu[ep] + d, b * factor[ep])
        return out

    def sparse(self, times_h: np.ndarray) -> bool:
        """Whether the recent sampling is ward-like (median gap >= SPARSE_GAP_H hours)."""
        t = np.sort(np.asarray(times_h, float))[-6:]
        return len(t) >= 2 and float(np.median(np.diff(t))) >= SPARSE_GAP_H

    def scores(self, endpoint: str, sparse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(lead_h [L], sorted normalised scores [L, n]) of the calibration split: the
        quantile grid (199 levels k / 200) where the tables carry it, else the 0.8 / 0.9 /
        0.95 quantiles as a three-point score set, which reproduces exactly those."""
        table = self.doc["conformal"]["4" if sparse else "none"][self.engine][endpoint]
        leads = sorted(int(h) for h in table)
        if all("grid" in table[str(h)] for h in leads):
            scores = np.array([table[str(h)]["grid"] for h in leads])
        else:
            scores = np.array([[table[str(h)][a] for a in ("0.8", "0.9", "0.95")]
                               for h in leads])
        return np.array(leads, dtype=np.float64), np.sort(scores, axis=1)

