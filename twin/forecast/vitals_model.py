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
from pathlib import Path

import numpy as np

from twin.forecast.state_space import PatientFilter, SSParams

PARAMS_PATH = Path(__file__).resolve().parents[1] / "realdata" / "params.json"
#: Readings older than this (hours before now) are not used: the slow component forgets
#: them (tau_s ~ 1 day) and the cost stays bounded for long stays.
WINDOW_H = 14 * 24.0
#: A median gap between the recent readings at or above this (hours) selects the
#: sparse-sampling (``--thin-h 4``) conformal table.
SPARSE_GAP_H = 3.0


class VitalsModel:
    """Per-patient forecasts of the vital signs learnt on real ICU stays."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.version = str(doc.get("model_version", "state_space"))
        self.params = {ep: SSParams(**p) for ep, p in doc["params"].items()}
        self.endpoints: tuple[str, ...] = tuple(self.params)

    @classmethod
    def load(cls, path: str | Path | None = None) -> VitalsModel:
        return cls(json.loads(Path(path or PARAMS_PATH).read_text()))

    def predict(self, history: dict[str, tuple[np.ndarray, np.ndarray]], now_h: float,
                lead_h: np.ndarray, *, age: float | None = None,
                sex: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{endpoint: (median, sd)}`` arrays like ``lead_h`` (hours after now_h), natural
        units, for every endpoint of the model; ``history[endpoint] = (times_h, values)``."""
        lead = np.asarray(lead_h, dtype=np.float64)
        out = {}
        for ep in self.endpoints:
            t, y = history.get(ep, (np.empty(0), np.empty(0)))
            t, y = np.asarray(t, float), np.asarray(y, float)
            keep = (t <= now_h) & (t >= now_h - WINDOW_H) & np.isfinite(y)
            f = PatientFilter(self.params[ep], t0=float(t[keep][0]) if keep.any() else now_h)
            for ti, yi in zip(t[keep], y[keep], strict=True):
                f.update(float(ti), float(yi))
            mus, sds = zip(*(f.forecast(now_h - f.t + h) for h in lead), strict=True)
            out[ep] = (np.array(mus), np.array(sds))
        return out

    def sparse(self, times_h: np.ndarray) -> bool:
        """Whether the recent sampling is ward-like (median gap >= SPARSE_GAP_H hours)."""
        t = np.sort(np.asarray(times_h, float))[-6:]
        return len(t) >= 2 and float(np.median(np.diff(t))) >= SPARSE_GAP_H

    def scores(self, endpoint: str, sparse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(lead_h [L], sorted normalised scores [L, n]) of the calibration split.

        The shipped tables hold the 0.8 / 0.9 / 0.95 quantiles; they are returned as a
        three-point score set per lead, which reproduces exactly those quantiles."""
        table = self.doc["conformal"]["4" if sparse else "none"]["state_space"][endpoint]
        leads = sorted(int(h) for h in table)
        scores = np.array([[table[str(h)][a] for a in ("0.8", "0.9", "0.95")] for h in leads])
        return np.array(leads, dtype=np.float64), np.sort(scores, axis=1)
