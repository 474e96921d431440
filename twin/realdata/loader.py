"""Load any cohort directory in the YAIB layout (``dyn.parquet``, ``sta.parquet``,
``outc.parquet``) into per-stay arrays on our endpoint names.

Rules (documented in docs/realdata.md):

* ``dyn.parquet`` must have ``stay_id``, ``time`` (timedelta since admission, or numeric hours)
  and at least one of the mapped vital-sign columns; ``sta.parquet`` must have ``stay_id``,
  ``age``, ``sex``; ``outc.parquet`` must have ``stay_id`` and ``label``.
* Units: the ricu concept dictionary (mmHg, beats/min, breaths/min, %, degC). A cohort may
  declare its units in an optional ``units.json`` beside the parquet files
  (``{"temp": "degF", ...}``); a known alternative unit is converted (degF -> degC, kPa ->
  mmHg, fraction -> %), an unknown one is a :class:`CohortError`. Without ``units.json`` a
  column whose median is far outside the expected unit's range (e.g. temperature median > 45,
  i.e. Fahrenheit) is a :class:`CohortError` too, never silently converted.
* A value <= 0 or outside the plausible range of its endpoint (``PLAUSIBLE``) is rejected and
  counted per column (``Cohort.rejected``); NaN is "not measured" (not a rejection).
* A stay present in ``sta.parquet`` with no ``dyn`` row is a :class:`CohortError` (empty stay);
  a stay whose every vital reading was rejected is kept, with empty arrays, and counted in
  ``Cohort.counts["stays_without_valid_vitals"]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.forecast.endpoints import PLAUSIBLE as TWIN_PLAUSIBLE
from twin.realdata.split import split_of

#: YAIB / ricu concept -> our endpoint name.
COLUMN_MAP: dict[str, str] = {
    "sbp": "sbp_mmhg",
    "dbp": "dbp_mmhg",
    "map": "map_mmhg",
    "hr": "hr_bpm",
    "resp": "resp_per_min",
    "o2sat": "spo2_pct",
    "temp": "temp_c",
    "fio2": "fio2_pct",   # inspired O2 (%): NEWS2's supplemental oxygen (> 21 %), not a vital
}
#: the columns that are not vital signs (a cohort needs a vital besides them)
SUPPORT_COLUMNS: tuple[str, ...] = ("fio2",)
ENDPOINTS: tuple[str, ...] = tuple(COLUMN_MAP.values())

#: Plausible range per endpoint, inclusive; outside (or <= 0) is rejected and counted.
#: The four vital signs the twin also forecasts share the service's table (one source).
PLAUSIBLE: dict[str, tuple[float, float]] = {
    **{ep: TWIN_PLAUSIBLE[ep] for ep in ("sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm")},
    "resp_per_min": (3.0, 80.0),
    "spo2_pct": (50.0, 100.0),
    "temp_c": (30.0, 43.0),
    "fio2_pct": (21.0, 100.0),
}

#: Expected unit per source column and the accepted alternatives with their conversion.
UNITS: dict[str, str] = {
    "sbp": "mmHg", "dbp": "mmHg", "map": "mmHg", "hr": "1/min", "resp": "1/min",
    "o2sat": "%", "temp": "degC", "fio2": "%",
}
_ALIASES = {
    "mmhg": "mmHg", "mm hg": "mmHg", "kpa": "kPa", "1/min": "1/min", "bpm": "1/min",
    "beats/min": "1/min", "breaths/min": "1/min", "/min": "1/min", "%": "%", "pct": "%",
    "percent": "%", "fraction": "fraction", "degc": "degC", "c": "degC", "celsius": "degC",
    "°c": "degC", "degf": "degF", "f": "degF", "fahrenheit": "degF", "°f": "degF",
}
_CONVERT = {
    ("mmHg", "kPa"): lambda x: x * 7.50062,
    ("%", "fraction"): lambda x: x * 100.0,
    ("degC", "degF"): lambda x: (x - 32.0) * 5.0 / 9.0,
}
#: Without units.json: the median a column must fall in to be taken as the expected unit.
_MEDIAN_RANGE = {
    "sbp": (50, 250), "dbp": (20, 160), "map": (30, 200), "hr": (25, 220), "resp": (3, 70),
    "o2sat": (50, 100), "temp": (30, 45), "fio2": (21, 100),
}

_SUPPORT = {COLUMN_MAP[c] for c in SUPPORT_COLUMNS}

REQUIRED = {
    "dyn.parquet": ("stay_id", "time"),
    "sta.parquet": ("stay_id", "age", "sex"),
    "outc.parquet": ("stay_id", "label"),
}


class CohortError(ValueError):
    """A cohort directory that cannot be read as the YAIB layout; names the file and column."""

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None):
        self.file, self.column = file, column
        where = ", ".join(x for x in (f"file {file}" if file else "",
                                       f"column {column!r}" if column else "") if x)
        super().__init__(f"{message} ({where})" if where else message)


@dataclass
class Stay:
    """One ICU stay: per endpoint, reading times (hours since admission, sorted) and values."""

    stay_id: int
    age: float
    sex: str | None
    split: str
    times: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    extra: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def age_band(self) -> str:
        if not np.isfinite(self.age):
            return "unknown"
        return "<50" if self.age < 50 else ("50-69" if self.age < 70 else ">=70")

    @property
    def end_h(self) -> float:
        ts = [t[-1] for t in self.times.values() if len(t)]
        return float(max(ts)) if ts else 0.0


@dataclass
class Cohort:
    directory: str
    stays: list[Stay]
    rejected: dict[str, dict[str, int]]   # endpoint -> {"nonpositive", "out_of_range"}
    counts: dict[str, int]
    units: dict[str, str]

    def split(self, name: str) -> Cohort:
        return Cohort(self.directory, [s for s in self.stays if s.split == name],
                      self.rejected, self.counts, self.units)

    def __len__(self) -> int:
        return len(self.stays)


def _read(directory: Path, name: str) -> pd.DataFrame:
    path = directory / name
    if not path.is_file():
        raise CohortError("missing file", file=str(path))
    try:
        df = pd.read_parquet(path)
    except Exception as exc:
        raise CohortError(f"unreadable parquet: {exc}", file=str(path)) from exc
    for col in REQUIRED[name]:
        if col not in df.columns:
            raise CohortError("missing column", file=str(path), column=col)
    return df


def _hours(series: pd.Series, file: str) -> np.ndarray:
    if pd.api.types.is_timedelta64_dtype(series):
        return series.dt.total_seconds().to_numpy(float) / 3600.0
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(float)
    raise CohortError(f"time must be a timedelta or numeric hours, got {series.dtype}",
                      file=file, column="time")


def _declared_units(directory: Path) -> dict[str, str]:
    path = directory / "units.json"
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except ValueError as exc:
        raise CohortError(f"invalid JSON: {exc}", file=str(path)) from exc
    out = {}
    for col, unit in raw.items():
        if col not in UNITS:
            continue
        norm = _ALIASES.get(str(unit).strip().lower())
        if norm is None or (norm != UNITS[col] and (UNITS[col], norm) not in _CONVERT):
            raise CohortError(f"unknown unit {unit!r} (expected {UNITS[col]})",
                              file=str(path), column=col)
        out[col] = norm
    return out


def load_cohort(directory) -> Cohort:
    """Read a YAIB-layout directory; see the module docstring for the rules."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CohortError("not a directory", file=str(directory))
    dyn = _read(directory, "dyn.parquet")
    sta = _read(directory, "sta.parquet")
    outc = _read(directory, "outc.parquet")
    dyn_file = str(directory / "dyn.parquet")
    present = [c for c in COLUMN_MAP if c in dyn.columns]
    vitals = [c for c in COLUMN_MAP if c not in SUPPORT_COLUMNS]
    if not set(present) & set(vitals):
        raise CohortError("no vital-sign column (need one of {})".format(", ".join(vitals)),
                          file=dyn_file, column="sbp")
    declared = _declared_units(directory)
    for col in present:
        if not pd.api.types.is_numeric_dtype(dyn[col]):
            raise CohortError(f"non-numeric values ({dyn[col].dtype})", file=dyn_file, column=col)
    hours = _hours(dyn["time"], dyn_file)
    if np.isnan(hours).any():
        raise CohortError("missing time values", file=dyn_file, column="time")

    units, rejected, data = {}, {}, {}
    for col in present:
        x = dyn[col].to_numpy(float).copy()
        unit = declared.get(col, UNITS[col])
        if unit != UNITS[col]:
            x = _CONVERT[(UNITS[col], unit)](x)
        elif col not in declared:
            finite = x[np.isfinite(x) & (x > 0)]
            lo, hi = _MEDIAN_RANGE[col]
            if finite.size and not lo <= float(np.median(finite)) <= hi:
                raise CohortError(
                    f"unknown units: median {np.median(finite):.3g} is not plausible in "
                    f"{UNITS[col]}; declare the unit in units.json", file=dyn_file, column=col)
        units[COLUMN_MAP[col]] = UNITS[col] if unit == UNITS[col] else f"{UNITS[col]} (from {unit})"
        name = COLUMN_MAP[col]
        lo, hi = PLAUSIBLE[name]
        measured = np.isfinite(x)
        nonpos = measured & (x <= 0)
        out = measured & ~nonpos & ((x < lo) | (x > hi))
        rejected[name] = {"nonpositive": int(nonpos.sum()), "out_of_range": int(out.sum()),
                          "kept": int((measured & ~nonpos & ~out).sum())}
        x[nonpos | out] = np.nan
        data[name] = x

    sid = dyn["stay_id"].to_numpy()
    order = np.lexsort((hours, sid))
    sid, hours = sid[order], hours[order]
    data = {k: v[order] for k, v in data.items()}
    uniq, start = np.unique(sid, return_index=True)
    stops = [*start[1:].tolist(), len(sid)]
    bounds = dict(zip(uniq.tolist(), zip(start.tolist(), stops, strict=True), strict=True))

    sta = sta.drop_duplicates("stay_id")
    missing_dyn = sorted(set(sta["stay_id"].tolist()) - set(bounds))
    if missing_dyn:
        raise CohortError(f"empty stay: stay_id {missing_dyn[0]} has no rows "
                          f"({len(missing_dyn)} such stays)", file=dyn_file, column="stay_id")
    static = {int(r.stay_id): r for r in sta.itertuples(index=False)}
    stays, without_valid, without_static = [], 0, 0
    for s_id, (a, b) in bounds.items():
        t = hours[a:b]
        times, values = {}, {}
        for name, x in data.items():
            v = x[a:b]
            ok = np.isfinite(v)
            times[name], values[name] = t[ok], v[ok]
        if not any(len(v) for n, v in values.items() if n not in _SUPPORT):
            without_valid += 1
        r = static.get(int(s_id))
        if r is None:
            without_static += 1
        age = float(r.age) if r is not None and pd.notna(r.age) else float("nan")
        sex = str(r.sex) if r is not None and pd.notna(r.sex) else None
        stays.append(Stay(int(s_id), age, sex, split_of(s_id), times, values))
    counts = {
        "stays": len(stays),
        "rows": len(dyn),
        "stays_without_valid_vitals": without_valid,
        "stays_without_static": without_static,
        "outcome_rows": len(outc),
    }
    return Cohort(str(directory), stays, rejected, counts, units)
