"""Where the model bundle lives by default, and building a small one when it is missing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twin.bundle import BundleError
from twin.forecast.forecaster import load_forecaster
from twin.forecast.graph import GraphConfig
from twin.forecast.published import PublishedConfig
from twin.forecast.training import TrainConfig, build_forecaster

REPO_ROOT = Path(__file__).resolve().parents[2]

#: A small configuration that builds in a few minutes on 2 cores (the service's default).
SMALL = TrainConfig(
    seed=0, n_train=100, n_calibration=48, n_dev=0, origins_per_patient=4,
    twin_conformal_origins=1,
    graph=GraphConfig(epochs=30), published=PublishedConfig(epochs=1),
)


def default_model_uri() -> str:
    """``MODEL_URI`` from the environment, else ``<repo>/instance/model``."""
    return os.environ.get("MODEL_URI") or str(REPO_ROOT / "instance" / "model")


def ensure_bundle(uri: str, cfg: TrainConfig = SMALL, log: Any = print) -> bool:
    """Build and write a bundle at ``uri`` unless a loadable one is there; True if built."""

    try:
        fc = load_forecaster(uri)
        log(f"model bundle {uri}: present (version {fc.version})")
        return False
    except BundleError as exc:
        log(f"model bundle {uri}: {exc}; building a small default bundle")
    fc, timings = build_forecaster(cfg)
    fc.save(uri)
    log(f"model bundle {uri}: built version {fc.version} in {timings['total_s']:.0f} s "
        f"(default engine {fc.default_engine})")
    return True
