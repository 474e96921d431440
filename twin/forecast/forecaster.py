"""The Forecaster: engines + conformal tables + metadata, saved to and loaded from a bundle."""

from __future__ import annotations

import io
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from twin import bundle as bundle_io
from twin.errors import ForecastError
from twin.forecast.conformal import ConformalTable, check_coverage
from twin.forecast.endpoints import ENDPOINT_UNITS, NAMES, from_model_scale
from twin.forecast.engines import LEAD_H, MAX_HORIZON_H, Engine
from twin.forecast.features import Case, Normaliser
from twin.forecast.observations import Observation, validate_observations
from twin.forecast.registry import ENGINES
from twin.forecast.result import EndpointForecast, Forecast
from twin.version import __version__

ENGINE_ORDER = ("persistence", "population_twin", "personalised_twin", "hybrid_twin", "graph",
                "published_gat")
#: engine predictions kept per Forecaster (a personalised fit costs ~0.5 s; an entry ~13 kB)
MEMO_SIZE = 256


class _PredictionMemo:
    """A thread-safe LRU of engine predictions ``(pred [E, L], scale [E, L] | None)`` keyed by
    (engine, scenario, observations, now_h): the costly part of a forecast depends only on
    these, not on the horizon or coverage asked, so those are re-served without refitting."""

    def __init__(self, size: int) -> None:
        self.size, self.lock = size, threading.Lock()
        self.data: OrderedDict[Hashable, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> tuple[np.ndarray, np.ndarray | None] | None:
        with self.lock:
            value = self.data.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self.data.move_to_end(key)
            return value

    def clear(self) -> None:
        with self.lock:
            self.data.clear()

    def put(self, key: Hashable, value: tuple[np.ndarray, np.ndarray | None]) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


def interval(median_z: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, ...]:
    """(median, lower, upper) in natural units from model-scale median and half-widths
    (arrays [..., E, K])."""
    return tuple(from_model_scale(a, axis=-2) for a in (median_z, median_z - half, median_z + half))


def interp_leads(z: np.ndarray, lead_h: np.ndarray) -> np.ndarray:
    """Engine output on LEAD_H ``[..., L]`` -> values at ``lead_h`` (linear)."""
    flat = z.reshape(-1, z.shape[-1])
    out = np.stack([np.interp(lead_h, LEAD_H, row) for row in flat])
    return out.reshape(*z.shape[:-1], len(lead_h))


class Forecaster:
    """Forecasts with conformal intervals from any of its engines (see INTERFACE.md)."""

    def __init__(
        self,
        engines: dict[str, Engine],
        conformal: dict[str, ConformalTable],
        default_engine: str,
        version: str,
        metrics: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        missing = [n for n in engines if n not in conformal]
        if missing:
            raise ValueError(f"engines without conformal scores: {missing}")
        if default_engine not in engines:
            raise ValueError(f"default_engine {default_engine!r} is not among {list(engines)}")
        self._engines = dict(engines)
        self.conformal = dict(conformal)
        self.default_engine = default_engine
        self.version = version
        self.metrics = metrics or {}
        self.config = config or {}
        self._memo = _PredictionMemo(MEMO_SIZE)

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(n for n in ENGINE_ORDER if n in self._engines) + tuple(
            n for n in self._engines if n not in ENGINE_ORDER
        )

    def engine(self, name: str | None) -> Engine:
        name = name or self.default_engine
        if name not in self._engines:
            raise ForecastError("engine", f"must be one of {list(self.engines)}, got {name!r}")
        return self._engines[name]

    def forecast(
        self,
        scenario: Any,
        observations: Sequence[Observation],
        now_h: float,
        horizon_h: float = 72,
        coverage: float = 0.9,
        engine: str | None = None,
        step_h: float = 1.0,
    ) -> Forecast:
        """Median and ``coverage`` interval of every endpoint at now_h, now_h + step_h, ...
        up to now_h + horizon_h (hours; horizon at most 72 h)."""
        eng = self.engine(engine)
        coverage = check_coverage(coverage)
        now_h = float(now_h)
        if not math.isfinite(now_h) or now_h < 0:
            raise ForecastError("now_h", f"must be a finite number >= 0, got {now_h}")
        if not 0 < float(horizon_h) <= MAX_HORIZON_H:
            raise ForecastError("horizon_h", f"must be in (0, {MAX_HORIZON_H}], got {horizon_h}")
        if not 0 < float(step_h) <= float(horizon_h):
            raise ForecastError("step_h", f"must be in (0, horizon_h={horizon_h}], got {step_h}")
        obs = validate_observations(observations, now_h)
        lead = np.arange(0.0, float(horizon_h) + 1e-9, float(step_h))
        pred, scale = self.predict(eng, Case(scenario, obs, now_h))
        z = interp_leads(pred, lead)
        table = self.conformal[eng.name]
        half = table.interval_half_width(
            lead, coverage, None if scale is None else interp_leads(scale, lead))
        med, lo, hi = interval(z, half)
        times = now_h + lead
        eps = {
            n: EndpointForecast(times, med[i], lo[i], hi[i], ENDPOINT_UNITS[n])
            for i, n in enumerate(NAMES)
        }
        return Forecast(eng.name, self.version, coverage, now_h, eps)

    def clear_memo(self) -> None:
        """Forget the memoised engine predictions and any engine's own cache (``clear_cache``,
        e.g. the hybrid twin's simulations): benchmarks time the engines themselves."""
        self._memo.clear()
        for eng in self._engines.values():
            getattr(eng, "clear_cache", lambda: None)()

    def predict(self, eng: Engine, case: Case) -> tuple[np.ndarray, np.ndarray | None]:
        """The engine's model-scale prediction and spread ``[E, L]`` on LEAD_H for one case,
        memoised (inputs are immutable: a frozen scenario and observation tuple)."""
        key = (eng.name, case.scenario, case.observations, case.now_h)
        try:
            hash(key)
        except TypeError:  # an unhashable scenario: no memo
            key = None
        found = self._memo.get(key) if key is not None else None
        if found is not None:
            return found
        pred, scale = eng.predict_with_scale([case])
        value = (pred[0], None if scale is None else scale[0])
        if key is not None:
            self._memo.put(key, value)
        return value

    # ---- persistence ----------------------------------------------------------------
    def save(self, uri: str) -> dict[str, Any]:
        """Write the bundle to a local path or s3:// URI; returns the manifest."""
        weights, states = {}, {}
        for name, eng in self._engines.items():
            st = dict(eng.state())
            if "weights" in st:
                weights[name] = st.pop("weights")
            states[name] = st
        buf = io.BytesIO()
        torch.save(weights, buf)
        conf = io.BytesIO()
        arrays = {}
        for name, table in self.conformal.items():
            for key, arr in table.to_arrays().items():
                arrays[f"{name}__{key}"] = arr
        np.savez(conf, **arrays)
        config = {**self.config, "engine_states": states, "default_engine": self.default_engine}
        files = {
            "config.json": json.dumps(config, indent=2, sort_keys=True).encode(),
            "weights.pt": buf.getvalue(),
            "conformal.npz": conf.getvalue(),
            "metrics.json": json.dumps(self.metrics, indent=2, sort_keys=True).encode(),
        }
        meta = {
            "model_version": self.version,
            "endpoints": list(NAMES),
            "engines": list(self.engines),
            "default_engine": self.default_engine,
        }
        meta["twin_version"] = __version__
        return bundle_io.write_bundle(uri, files, meta)


def build_engine(name: str, state: dict[str, Any], weights: dict[str, Any],
                 normaliser: Normaliser, config: dict[str, Any]) -> Engine:
    """Rebuild one engine from its stored state, by name through ``ENGINES``."""
    if name not in ENGINES:
        raise bundle_io.BundleError("model", f"unknown engine {name!r} in bundle")
    return ENGINES[name].from_bundle(state, weights, normaliser, config)


def load_forecaster(uri: str) -> Forecaster:
    """Load a Forecaster from a bundle (local path or s3:// URI); raises BundleError."""
    manifest, files = bundle_io.read_bundle(str(uri), NAMES)
    try:
        config = json.loads(files["config.json"])
        metrics = json.loads(files["metrics.json"])
        weights = torch.load(io.BytesIO(files["weights.pt"]), weights_only=True)
        with np.load(io.BytesIO(files["conformal.npz"])) as npz:
            arrays = {k: npz[k] for k in npz.files}
        normaliser = Normaliser.from_dict(config["normaliser"])
        engines, tables = {}, {}
        for name in manifest["engines"]:
            engines[name] = build_engine(
                name, config["engine_states"][name], weights, normaliser, config
            )
            tables[name] = ConformalTable.from_arrays(
                {k.split("__", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{name}__")}
            )
    except bundle_io.BundleError:
        raise
    except Exception as exc:  # any malformed content is a bundle problem for the caller
        raise bundle_io.BundleError(
            "model", f"bundle {uri}: incompatible or corrupt content ({type(exc).__name__}: {exc})"
        ) from exc
    return Forecaster(
        engines, tables, config["default_engine"], manifest["model_version"], metrics, config
    )
