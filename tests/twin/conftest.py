"""Twin fixtures: a small trained forecaster, built once per session (seconds)."""

from __future__ import annotations

import pytest

from tests.twin.forecast.helpers import tiny_forecaster
from twin.forecast.forecaster import Forecaster


@pytest.fixture(scope="session")
def tiny_fc() -> Forecaster:
    """Persistence + graph + published GAT trained briefly on synthetic cases (seed 1)."""
    return tiny_forecaster(seed=1)
