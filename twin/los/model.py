"""The remaining-stay model: three quantile tree ensembles and a conformal correction.

``lower`` and ``upper`` predict the 10th and 90th percentile of the remaining ICU stay
(hours) from :data:`twin.los.features.FEATURES`; the median is the mean of the ``median``
ensembles, each of the median in hours or (``median_log``) of ``log(1 + hours)``.
Conformalised quantile regression (Romano, Patterson & Candes, NeurIPS 2019) widens (or
narrows) the ``[lower, upper]`` band by ``correction_h[b]`` hours, learnt on the calibration
split for each band ``b`` of hours since admission (``bands_h`` are the bands' lower edges), so
that 80 % of calibration stays' remaining stays fall inside at every stage of the stay.
Predictions are clipped to ``[0, cap_h]``; the labels it learnt from are capped at ``cap_h``
(168 h).

The model is a JSON document (optionally gzip-compressed) shipped in the package
(:data:`DEFAULT_PATH`) or read from a path or ``s3://`` URI.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import BundleError
from twin.los.features import FEATURES, stay_features
from twin.los.trees import TreeEnsemble

FORMAT = "ras-twin-los-model"
FORMAT_VERSION = 2
DEFAULT_PATH = Path(__file__).with_name("model.json.gz")


@dataclass(frozen=True)
class LosEstimate:
    """Expected remaining stay (hours) with its interval, at ``hours_since_admission``."""

    median_h: float
    low_h: float
    high_h: float
    coverage: float
    hours_since_admission: float


@dataclass(frozen=True)
class LosModel:
    """See the module docstring; ``trained_on`` describes the cohort and the splits."""

    version: str
    features: tuple[str, ...]
    lower: TreeEnsemble
    median: tuple[TreeEnsemble, ...]
    median_log: tuple[bool, ...]
    upper: TreeEnsemble
    bands_h: tuple[float, ...]
    correction_h: tuple[float, ...]
    coverage: float = 0.8
    cap_h: float = 168.0
    trained_on: dict[str, Any] = field(default_factory=dict)

    def band(self, hours: np.ndarray) -> np.ndarray:
        """Index of the hours-since-admission band of each row."""
        return np.searchsorted(np.asarray(self.bands_h), np.asarray(hours, float),
                               side="right") - 1

    def raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Uncorrected (lower, median, upper) quantiles, hours, for feature rows ``x``."""
        meds = [np.expm1(e.predict(x)) if lg else e.predict(x)
                for e, lg in zip(self.median, self.median_log, strict=True)]
        return self.lower.predict(x), np.mean(meds, axis=0), self.upper.predict(x)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(median, low, high) remaining stay in hours for feature rows ``x``."""
        x = np.atleast_2d(np.asarray(x, float))
        lo, med, hi = self.raw(x)
        corr = np.asarray(self.correction_h)[self.band(x[:, 0])]
        lo, hi = lo - corr, hi + corr
        med = np.clip(med, 0.0, self.cap_h)
        lo = np.clip(np.minimum(lo, med), 0.0, self.cap_h)
        hi = np.clip(np.maximum(hi, med), 0.0, self.cap_h)
        return med, lo, hi

    def estimate(self, grid: dict[str, np.ndarray], static: dict[str, float]) -> LosEstimate:
        """The estimate at the last hour of an hourly ``grid`` (see :func:`stay_features`)."""
        n = len(next(iter(grid.values())))
        x = stay_features(grid, static, rows=slice(n - 1, n))
        med, lo, hi = self.predict(x)
        return LosEstimate(float(med[0]), float(lo[0]), float(hi[0]), self.coverage,
                           float(n - 1))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "version": self.version,
                "features": list(self.features), "coverage": self.coverage,
                "cap_h": self.cap_h, "bands_h": list(self.bands_h),
                "correction_h": list(self.correction_h), "trained_on": self.trained_on,
                "lower": self.lower.to_dict(), "median": [e.to_dict() for e in self.median],
                "median_log": list(self.median_log), "upper": self.upper.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LosModel:
        if d.get("format") != FORMAT or d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION}")
        if tuple(d["features"]) != FEATURES:
            raise ValueError("its features do not match this code's (refit with fit-los)")
        if len(d["bands_h"]) != len(d["correction_h"]):
            raise ValueError("bands_h and correction_h differ in length")
        if not d["median"] or len(d["median"]) != len(d["median_log"]):
            raise ValueError("median and median_log differ in length")
        return cls(str(d["version"]), tuple(d["features"]),
                   TreeEnsemble.from_dict(d["lower"]),
                   tuple(TreeEnsemble.from_dict(m) for m in d["median"]),
                   tuple(bool(b) for b in d["median_log"]), TreeEnsemble.from_dict(d["upper"]),
                   tuple(float(b) for b in d["bands_h"]),
                   tuple(float(c) for c in d["correction_h"]), float(d["coverage"]),
                   float(d["cap_h"]), dict(d.get("trained_on", {})))


def save_model(model: LosModel, path) -> None:
    """Write the model as JSON (gzip when the name ends in ``.gz``)."""
    data = json.dumps(model.to_dict(), separators=(",", ":")).encode()
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def _read(uri: str) -> bytes:
    if uri.startswith("s3://"):
        from twin.bundle import _read as read_uri

        head, _, name = uri.rstrip("/").rpartition("/")
        return read_uri(head, name)
    path = Path(uri)
    if not path.is_file():
        raise BundleError("los", f"remaining-stay model {uri}: no such file")
    return path.read_bytes()


def load_model(uri=None) -> LosModel:
    """The model at ``uri`` (a path or ``s3://bucket/key``; default: the shipped one).
    Raises BundleError when it is missing, corrupt or for other features."""
    uri = str(uri or DEFAULT_PATH)
    raw = _read(uri)
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return LosModel.from_dict(doc)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, KeyError,
            TypeError, ValueError) as exc:
        raise BundleError("los", f"remaining-stay model {uri}: {exc}") from exc
