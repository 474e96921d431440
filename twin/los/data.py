"""Read a YAIB-layout ``los`` directory into per-stay hourly grids and remaining-stay labels.

``dyn.parquet`` gives the hourly measurements (``stay_id``, ``time`` since admission, one column
per concept; absent concepts are NaN), ``sta.parquet`` age, sex, height and weight,
``outc.parquet`` the remaining ICU stay in hours at each hour (``label``, capped at 168).
Cleaning (the same rules as :mod:`twin.realdata.loader`): a vital sign <= 0 or outside the
loader's plausible range is dropped; a lab value <= 0 is dropped (except base excess, which may
be negative). Hours are whole hours since admission; a stay's grid runs from hour 0 to its last
row. The split is the fixed patient-level split of :mod:`twin.realdata.split`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin.los.features import CONCEPTS, FEATURES, LABS, VITALS, stay_features
from twin.realdata.loader import COLUMN_MAP, PLAUSIBLE, CohortError, _hours, _read
from twin.realdata.split import split_of

#: Lab concepts that may be zero or negative.
SIGNED = {"be"}
#: The label is the remaining stay capped at this many hours.
CAP_H = 168.0


@dataclass
class LosStay:
    """One stay: hourly grid (concept -> values per hour), static covariates, hourly labels
    (remaining stay, hours; NaN where the cohort gives none) and its split."""

    stay_id: int
    split: str
    grid: dict[str, np.ndarray]
    static: dict[str, float]
    label: np.ndarray

    @property
    def hours(self) -> int:
        return len(self.label)


def _clean(df: pd.DataFrame, file: str) -> dict[str, np.ndarray]:
    out = {}
    for c in CONCEPTS:
        if c not in df.columns:
            continue
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise CohortError(f"non-numeric values ({df[c].dtype})", file=file, column=c)
        x = df[c].to_numpy(float).copy()
        if c in VITALS:
            lo, hi = PLAUSIBLE[COLUMN_MAP[c]]
            x[(x <= 0) | (x < lo) | (x > hi)] = np.nan
        elif c in LABS and c not in SIGNED:
            x[x <= 0] = np.nan
        elif c not in LABS:  # urine: zero output is a measurement
            x[x < 0] = np.nan
        out[c] = x
    return out


def _static(row) -> dict[str, float]:
    def num(name: str) -> float:
        v = getattr(row, name, np.nan) if row is not None else np.nan
        return float(v) if v is not None and pd.notna(v) else float("nan")

    sex = getattr(row, "sex", None) if row is not None else None
    male = 1.0 if sex == "Male" else 0.0 if sex == "Female" else float("nan")
    return {"age": num("age"), "sex_male": male, "height": num("height"),
            "weight": num("weight")}


def load_los(directory) -> list[LosStay]:
    """Every stay of a YAIB ``los`` directory (see the module docstring)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CohortError("not a directory", file=str(directory))
    dyn, sta, outc = (_read(directory, f) for f in ("dyn.parquet", "sta.parquet",
                                                     "outc.parquet"))
    dyn_file = str(directory / "dyn.parquet")
    if "time" not in outc.columns:
        raise CohortError("missing column (hourly labels)", file=str(directory / "outc.parquet"),
                          column="time")
    dh = np.rint(_hours(dyn["time"], dyn_file)).astype(int)
    oh = np.rint(_hours(outc["time"], str(directory / "outc.parquet"))).astype(int)
    if (dh < 0).any():
        raise CohortError("negative time", file=dyn_file, column="time")
    values = _clean(dyn, dyn_file)
    labels = outc["label"].to_numpy(float)
    static = {int(r.stay_id): r for r in sta.drop_duplicates("stay_id").itertuples(index=False)}
    dyn_sid = dyn["stay_id"].to_numpy()
    out_sid = outc["stay_id"].to_numpy()
    out_rows = pd.Series(np.arange(len(outc))).groupby(out_sid).indices
    stays = []
    for sid, rows in pd.Series(np.arange(len(dyn))).groupby(dyn_sid).indices.items():
        n = int(dh[rows].max()) + 1
        grid = {}
        for c, x in values.items():
            col = np.full(n, np.nan)
            col[dh[rows]] = x[rows]
            grid[c] = col
        lab = np.full(n, np.nan)
        orow = out_rows.get(sid)
        if orow is not None:
            keep = oh[orow] < n
            lab[oh[orow][keep]] = np.minimum(labels[orow][keep], CAP_H)
        stays.append(LosStay(int(sid), split_of(sid), grid, _static(static.get(int(sid))),
                             lab))
    return stays


@dataclass
class Design:
    """Feature rows of every labelled hour of some stays: ``x`` (rows x FEATURES), ``y``
    (remaining stay, hours), ``hour`` (hours since admission) and ``stay`` (stay id)."""

    x: np.ndarray
    y: np.ndarray
    hour: np.ndarray
    stay: np.ndarray

    def where(self, mask: np.ndarray) -> Design:
        return Design(self.x[mask], self.y[mask], self.hour[mask], self.stay[mask])

    def concat(self, other: Design) -> Design:
        """These rows followed by ``other``'s."""
        return Design(*(np.concatenate([a, b]) for a, b in
                        zip((self.x, self.y, self.hour, self.stay),
                            (other.x, other.y, other.hour, other.stay), strict=True)))


def design(stays: list[LosStay]) -> Design:
    """Stack the features of every hour of ``stays`` that has a label."""
    xs, ys, hs, ss = [], [], [], []
    for s in stays:
        keep = np.isfinite(s.label)
        if not keep.any():
            continue
        xs.append(stay_features(s.grid, s.static)[keep])
        ys.append(s.label[keep])
        hs.append(np.flatnonzero(keep).astype(float))
        ss.append(np.full(int(keep.sum()), s.stay_id))
    if not xs:
        return Design(np.zeros((0, len(FEATURES))), np.zeros(0), np.zeros(0),
                      np.zeros(0, int))
    return Design(np.concatenate(xs), np.concatenate(ys), np.concatenate(hs),
                  np.concatenate(ss))
