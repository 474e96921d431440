"""Features of a stay at every hour, from the hourly grid of its measurements so far.

The grid is one row per hour since ICU admission (row ``h`` = the hour ``[h, h + 1)``) and one
column per concept of :data:`CONCEPTS` (ricu units: mmHg, /min, %, degC, mg/dL, mmol/L, g/dL,
10^3/uL, mL), NaN where nothing was measured in that hour. Row ``h`` of the features uses rows
``<= h`` only (no look-ahead), so the same function serves training (every hour of a stay) and
the service (the last hour of a patient's stay so far).

Per concept: the last value, the hours since it, the number of measured hours in the last 24 h;
for the frequent vital signs also the mean of the last 6 h and 24 h, the 24 h minimum, maximum
and standard deviation, and the change from the value 24 h earlier; urine output summed over
6 h and 24 h. Then the hours since admission, age, sex, height, weight, the partial NEWS2 of
the latest values, its 24 h maximum and change, and the measurement density.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from twin.monitoring import news2 as n2

#: Every concept the model reads, in the YAIB/ricu naming (a cohort may lack some: NaN).
VITALS: tuple[str, ...] = ("hr", "sbp", "dbp", "map", "resp", "o2sat", "temp", "fio2")
LABS: tuple[str, ...] = (
    "alb", "alp", "alt", "ast", "be", "bicar", "bili", "bili_dir", "bnd", "bun", "ca", "cai",
    "ck", "ckmb", "cl", "crea", "crp", "fgn", "glu", "hgb", "inr_pt", "k", "lact", "lymph",
    "mch", "mchc", "mcv", "methb", "mg", "na", "neut", "pco2", "ph", "phos", "plt", "po2",
    "ptt", "tnt", "wbc",
)
URINE = "urine"
CONCEPTS: tuple[str, ...] = (*VITALS, *LABS, URINE)
STATIC: tuple[str, ...] = ("age", "sex_male", "height", "weight")
_WINDOW = 24


def _names() -> tuple[str, ...]:
    out = ["hours_since_admission", *STATIC]
    for c in CONCEPTS:
        out += [f"{c}_last", f"{c}_age_h", f"{c}_n24"]
    for c in VITALS:
        out += [f"{c}_mean6", f"{c}_mean24", f"{c}_min24", f"{c}_max24", f"{c}_sd24",
                f"{c}_delta24"]
    out += ["urine_sum6", "urine_sum24", "news2_partial", "news2_max24", "news2_delta24",
            "news2_missing", "measured24"]
    return tuple(out)


#: Column names of :func:`stay_features`, in order.
FEATURES: tuple[str, ...] = _names()


def _ffill(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(last value at or before each row, hours since it); NaN before the first value."""
    n = len(x)
    idx = np.where(np.isfinite(x), np.arange(n), -1)
    idx = np.maximum.accumulate(idx)
    last = np.where(idx >= 0, x[np.maximum(idx, 0)], np.nan)
    age = np.where(idx >= 0, np.arange(n) - idx, np.nan).astype(float)
    return last, age


def _windows(x: np.ndarray, w: int) -> np.ndarray:
    """Rows x window: the last ``w`` hours up to each row (NaN-padded before admission)."""
    padded = np.concatenate([np.full(w - 1, np.nan), x])
    return sliding_window_view(padded, w)


def _window_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Per row, the sum of ``x`` over the last ``w`` hours (hours before admission count 0)."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    n = np.arange(1, len(x) + 1)
    return c[n] - c[np.maximum(n - w, 0)]


def _nanstat(fn, win: np.ndarray) -> np.ndarray:
    ok = np.isfinite(win).any(axis=1)
    out = np.full(len(win), np.nan)
    if ok.any():
        out[ok] = fn(win[ok], axis=1)
    return out


def _news2_partial(last: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(partial NEWS2 of the latest values, number of NEWS2 parameters missing) per row.

    Supplemental oxygen is FiO2 > 21 %; consciousness is not in the cohorts (always missing).
    """
    n = len(last["hr"])
    total, missing = np.zeros(n), np.zeros(n)

    def val(c: str, i: int) -> float | None:
        v = last[c][i]
        return None if not math.isfinite(v) else float(v)

    for i in range(n):
        fio2 = val("fio2", i)
        obs = n2.ObservationSet(
            respiratory_rate_per_min=val("resp", i), spo2_pct=val("o2sat", i),
            supplemental_oxygen=None if fio2 is None else fio2 > 21.0,
            sbp_mmhg=val("sbp", i), hr_bpm=val("hr", i), temperature_c=val("temp", i))
        score, _, miss = n2.partial_score(obs)
        total[i], missing[i] = score, len(miss)
    return total, missing


def stay_features(grid: dict[str, np.ndarray], static: dict[str, float],
                  rows: slice | None = None) -> np.ndarray:
    """Features (hours x len(FEATURES)) of one stay; ``grid[c]`` is the hourly column of
    concept ``c`` (missing concepts are NaN), ``static`` has age (years), sex_male (1/0/NaN),
    height (cm), weight (kg). ``rows`` keeps only some hours (all computed from the past)."""
    n = len(next(iter(grid.values())))
    cols: list[np.ndarray] = [np.arange(n, dtype=float)]
    cols += [np.full(n, float(static.get(k, np.nan))) for k in STATIC]
    g = {c: np.asarray(grid.get(c, np.full(n, np.nan)), float) for c in CONCEPTS}
    last = {}
    for c in CONCEPTS:
        lv, age = _ffill(g[c])
        last[c] = lv
        n24 = _window_sum(np.isfinite(g[c]).astype(float), _WINDOW)
        cols += [lv, age, n24]
    for c in VITALS:
        w24 = _windows(g[c], _WINDOW)
        w6 = w24[:, -6:]
        prev, _ = _ffill(np.concatenate([np.full(_WINDOW, np.nan), g[c]])[:n])
        cols += [_nanstat(np.nanmean, w6), _nanstat(np.nanmean, w24),
                 _nanstat(np.nanmin, w24), _nanstat(np.nanmax, w24),
                 _nanstat(np.nanstd, w24), last[c] - prev]
    urine = np.nan_to_num(g[URINE], nan=0.0)
    cols += [_window_sum(urine, 6), _window_sum(urine, _WINDOW)]
    news, miss = _news2_partial(last)
    nw = _windows(news, _WINDOW)
    news_prev = np.concatenate([np.full(_WINDOW, np.nan), news])[:n]
    measured = sum(np.isfinite(g[c]).astype(float) for c in CONCEPTS)
    cols += [news, np.nanmax(nw, axis=1), news - news_prev, miss,
             _window_sum(measured, _WINDOW)]
    out = np.column_stack(cols)
    return out if rows is None else out[rows]
