"""The engine registry: name -> class (as torchdiffeq's ``SOLVERS``); bundles name their
engines, and ``twin.forecast.forecaster.build_engine`` rebuilds each through this table."""

from __future__ import annotations

from twin.forecast.engines import Engine, Persistence
from twin.forecast.graph import GraphEngine
from twin.forecast.hybrid_engine import HybridTwin
from twin.forecast.published import PublishedEngine
from twin.forecast.twin_engines import PersonalisedTwin, PopulationTwin

ENGINES: dict[str, type[Engine]] = {
    cls.name: cls
    for cls in (Persistence, GraphEngine, PublishedEngine, PopulationTwin, PersonalisedTwin,
                HybridTwin)
}
