"""Fit the remaining-stay model: LightGBM quantile trees for the 10th and 90th percentiles on
the train split and their conformal correction (CQR) on the calibration split; the median from
train and calibration together (it takes no part in the interval), as the mean of a median in
hours and one of ``log(1 + hours)``. LightGBM is needed here only (development).

Settings (chosen on the calibration split, never on test): 600 trees of at most 15 leaves,
learning rate 0.03, at least 100 rows per leaf, extremely randomised split points
(``extra_trees``), half the features and 80 % of the rows per tree. The median's two-model
blend and its fit on train + calibration were chosen by a 4-fold stay-grouped cross-validation
on train + calibration (docs/forecasting.md); the test split was not used. Quantile loss at 0.1,
0.5 and 0.9. The correction of each hours-since-admission band is the
``ceil((n + 1) * 0.8) / n`` empirical quantile of the CQR scores
``max(lower - y, y - upper)`` of the calibration rows in that band.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from twin.los.data import Design
from twin.los.features import FEATURES
from twin.los.model import LosModel
from twin.los.trees import from_lightgbm_dump

VERSION = "los-1"
QUANTILES = (0.1, 0.5, 0.9)
BANDS_H = (0.0, 24.0, 48.0, 72.0, 120.0)
PARAMS = {"objective": "quantile", "learning_rate": 0.03, "num_leaves": 15,
          "min_child_samples": 100, "extra_trees": True, "colsample_bytree": 0.5,
          "subsample": 0.8, "subsample_freq": 1, "verbose": -1, "seed": 0,
          "deterministic": True, "num_threads": 2}
N_TREES = 600
#: The median ensembles: one in hours, one in log(1 + hours).
MEDIAN_LOG = (False, True)


def fit_quantile(train: Design, alpha: float, n_trees: int = N_TREES, log: bool = False):
    """A LightGBM booster for the ``alpha`` quantile of the remaining stay (hours; of
    ``log(1 + hours)`` when ``log``)."""
    import lightgbm as lgb

    y = np.log1p(train.y) if log else train.y
    data = lgb.Dataset(train.x, y, feature_name=list(FEATURES), free_raw_data=False)
    return lgb.train({**PARAMS, "alpha": alpha}, data, num_boost_round=n_trees)


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The finite-sample conformal quantile of ``scores`` (0 when there are none)."""
    n = len(scores)
    if n == 0:
        return 0.0
    k = min(n, math.ceil((n + 1) * coverage))
    return float(np.sort(scores)[k - 1])


def cqr_corrections(model: LosModel, cal: Design, coverage: float) -> tuple[float, ...]:
    """Per band of :attr:`LosModel.bands_h`, the CQR correction (hours) on ``cal``."""
    lo, _, hi = model.raw(cal.x)
    scores = np.maximum(lo - cal.y, cal.y - hi)
    band = model.band(cal.hour)
    return tuple(conformal_quantile(scores[band == b], coverage)
                 for b in range(len(model.bands_h)))


def fit_los(train: Design, cal: Design, trained_on: dict, coverage: float = 0.8,
            n_trees: int = N_TREES, log=print) -> LosModel:
    """Fit the quantile ensembles and the correction (module docstring)."""
    def fit(data: Design, q: float, in_log: bool = False):
        log(f"fitting the {q:.1f} quantile{' of log(1 + h)' if in_log else ''} "
            f"({len(data.y)} rows, {n_trees} trees)")
        return from_lightgbm_dump(fit_quantile(data, q, n_trees, in_log).dump_model())

    both = train.concat(cal)
    lower, upper = fit(train, QUANTILES[0]), fit(train, QUANTILES[2])
    medians = (fit(both, QUANTILES[1]), fit(both, QUANTILES[1], True))
    ens = (lower, medians, MEDIAN_LOG, upper)
    meta = {**trained_on, "fitted_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "quantiles": list(QUANTILES),
            "fitted_on": {"lower/upper": "train", "correction": "calibration",
                          "median": "train + calibration"},
            "params": {**PARAMS, "n_trees": n_trees}}
    model = LosModel(VERSION, FEATURES, *ens, bands_h=BANDS_H,
                     correction_h=(0.0,) * len(BANDS_H), coverage=coverage, trained_on=meta)
    corr = cqr_corrections(model, cal, coverage)
    log("conformal corrections (h) per band: " + ", ".join(f"{c:+.1f}" for c in corr))
    return LosModel(VERSION, FEATURES, *ens, bands_h=BANDS_H, correction_h=corr,
                    coverage=coverage, trained_on=meta)
