"""`simulate`: scenarios -> trajectories of every endpoint on requested times (the public verb)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from torch import Tensor

from twin.errors import ScenarioError
from twin.models import make_model
from twin.parameters import ParameterSet, load_parameters
from twin.scenario import Scenario
from twin.solver import SolverStats, integrate

ENDPOINTS: dict[str, str] = {
    "angI_pg_per_ml": "pg/mL",
    "angII_pg_per_ml": "pg/mL",
    "renin_pg_per_ml": "pg/mL",
    "pra_ng_per_ml_per_h": "ng/mL/h",
    "ang17_pg_per_ml": "pg/mL",
    "diacid_ng_per_ml": "ng/mL",
    "ace_inhibition_pct": "%",
    "sbp_mmhg": "mmHg",
    "dbp_mmhg": "mmHg",
    "map_mmhg": "mmHg",
    "hr_bpm": "1/min",
}
EXTRA_ENDPOINTS: dict[str, str] = {
    "at1r_bound": "model concentration unit (nmol/L in the clinical set)",
    "agt_pg_per_ml": "pg/mL",
    "ace2_per_h": "1/h",
    "ir_index": "dimensionless",
}
REFERENCE_COLUMNS = ("t", "angI", "Inhibition", "Renin", "AGT", "angII", "angII_norm", "diacid",
                     "ang17", "at1r", "at2r", "ACE2", "IR")
DEFAULT_RTOL = 1e-5


@dataclass
class SimulationResult:
    """Trajectories of a batch: endpoints[name] is a [B, T] tensor on `times_h`."""

    times_h: np.ndarray
    endpoints: dict[str, Tensor]
    scenarios: list[Scenario]
    states: Tensor | None = None
    reference_columns: dict[str, Tensor] = field(default_factory=dict)
    stats: SolverStats | None = None

    def to_frame(self, i: int = 0) -> pd.DataFrame:
        """`time_h` plus one column per endpoint (standard ones first) for patient i."""
        data = {"time_h": self.times_h}
        for name in list(ENDPOINTS) + [n for n in self.endpoints if n not in ENDPOINTS]:
            data[name] = self.endpoints[name][i].detach().numpy()
        return pd.DataFrame(data)

    def to_reference_frame(self, i: int = 0) -> pd.DataFrame:
        """The published DKD_*.csv column layout (t in days, published names) for patient i."""
        return pd.DataFrame({c: self.reference_columns[c][i].detach().numpy()
                             for c in REFERENCE_COLUMNS})


def _times(times_h: ArrayLike) -> np.ndarray:
    t = np.asarray(times_h, dtype=float).reshape(-1)
    if t.size == 0:
        raise ScenarioError("times_h", "must hold at least one time")
    if not np.all(np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ScenarioError("times_h", "must be finite, >= 0 and strictly increasing")
    return t


def simulate(scenarios: Scenario | Sequence[Scenario], times_h: ArrayLike, *,
             parameters: str | ParameterSet = "clinical",
             overrides: Mapping[str, Tensor] | None = None,
             rtol: float = DEFAULT_RTOL) -> SimulationResult:
    """Simulate B scenarios at once and return every endpoint on `times_h` (hours).

    overrides: patient-level multipliers (twin.PATIENT_PARAMETERS) or raw parameter values of
    the set, name -> tensor [B] (may require grad; the result is differentiable w.r.t. them).
    rtol: solver relative tolerance (default 1e-5). Raises ScenarioError on bad input.
    """
    batch = [scenarios] if isinstance(scenarios, Scenario) else list(scenarios)
    if not batch or not all(isinstance(s, Scenario) for s in batch):
        raise ScenarioError("scenarios", "must be a Scenario or a non-empty sequence of Scenario")
    t = _times(times_h)
    pset = load_parameters(parameters) if isinstance(parameters, str) else parameters
    model = make_model(pset, batch, float(t[-1]), overrides)
    stats = SolverStats()
    y = integrate(model.rhs, model.y0, t, model.inputs.breakpoints, rtol=rtol,
                  atol=model.atol(), stats=stats)
    return SimulationResult(times_h=t, endpoints=model.endpoints(t, y), scenarios=batch,
                            states=y, reference_columns=model.columns(t, y), stats=stats)


