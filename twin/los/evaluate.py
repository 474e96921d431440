"""Score remaining-stay predictors on held-out stays: MAE and median absolute error (hours)
at hours 24, 48 and 72 since admission and over all hours, and the coverage of the 80 %
interval. Baselines, both fitted on the train split of the same cohort:

- ``median``: always the median remaining stay of the train rows (all hours), with their
  10th-90th percentiles as the interval ("always predicting the median");
- ``random_forest``: the predecessor's recipe, a scikit-learn random forest regressor on
  the same features (100 trees, at least 5 rows per leaf, a third of the features per split,
  missing values handled by the trees), its 80 % interval the split-conformal absolute
  residual of the calibration rows per hours-since-admission band.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from twin.los.data import Design
from twin.los.fit import BANDS_H, conformal_quantile

HOURS: tuple[int, ...] = (24, 48, 72)


class Predictor(Protocol):
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class MedianBaseline:
    """The train rows' median remaining stay (hours) and its 10th-90th percentile band."""

    def __init__(self, train: Design) -> None:
        self.median, self.low, self.high = np.quantile(train.y, [0.5, 0.1, 0.9])

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(np.atleast_2d(x))
        return (np.full(n, self.median), np.full(n, self.low), np.full(n, self.high))


class RandomForestRecipe:
    """The predecessor's random forest (module docstring), with a conformal band."""

    def __init__(self, train: Design, cal: Design, coverage: float = 0.8,
                 n_jobs: int = 2) -> None:
        from sklearn.ensemble import RandomForestRegressor

        self.forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=5,
                                            max_features=1 / 3, n_jobs=n_jobs, random_state=0)
        self.forest.fit(train.x, train.y)
        resid = np.abs(cal.y - self.forest.predict(cal.x))
        band = self._band(cal.hour)
        self.width = np.array([conformal_quantile(resid[band == b], coverage)
                               for b in range(len(BANDS_H))])

    @staticmethod
    def _band(hours: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(BANDS_H), hours, side="right") - 1

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.atleast_2d(x)
        med = self.forest.predict(x)
        w = self.width[self._band(x[:, 0])]
        return med, np.clip(med - w, 0, None), med + w


def scores(y: np.ndarray, med: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict:
    """n, MAE and median absolute error (hours), and the share of ``y`` in ``[lo, hi]``."""
    if len(y) == 0:
        return {"n": 0, "mae_h": None, "medae_h": None, "coverage_80": None}
    err = np.abs(y - med)
    return {"n": len(y), "mae_h": round(float(err.mean()), 3),
            "medae_h": round(float(np.median(err)), 3),
            "coverage_80": round(float(((y >= lo) & (y <= hi)).mean()), 4)}


def evaluate(test: Design, predictors: dict[str, Predictor]) -> dict:
    """``{"results": {name: {"24"|"48"|"72"|"all": scores}}}`` on the rows of ``test``."""
    results = {}
    for name, p in predictors.items():
        med, lo, hi = p.predict(test.x)
        out = {}
        for h in HOURS:
            m = test.hour == h
            out[str(h)] = scores(test.y[m], med[m], lo[m], hi[m])
        out["all"] = scores(test.y, med, lo, hi)
        results[name] = out
    return {"results": results}
