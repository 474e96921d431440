"""Parameter sets (`reference`, `clinical`) and the patient-level parameters overrides accept.

Values are packaged in twin/data/{reference,clinical}.json as {"common": ..., "renal":
{"normal": ..., "impaired": ...}}; `ParameterSet.values(renal_function)` merges them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from twin.errors import ScenarioError


@dataclass(frozen=True)
class ParamSpec:
    """A patient-level parameter: multiplier on the scenario's value, with its allowed range."""

    name: str
    default: float
    lower: float
    upper: float
    unit: str
    doc: str


PATIENT_PARAMETERS: dict[str, ParamSpec] = {s.name: s for s in (
    ParamSpec("angII_baseline", 1.0, 0.2, 5.0, "x", "untreated steady-state AngII (multiplier)"),
    ParamSpec("angI_baseline", 1.0, 0.2, 5.0, "x", "untreated steady-state AngI (multiplier)"),
    ParamSpec("renin_baseline", 1.0, 0.2, 5.0, "x",
              "untreated steady-state active renin, hence PRA (multiplier)"),
    ParamSpec("ace_c50", 1.0, 0.2, 5.0, "x",
              "diacid concentration of half-maximal ACE inhibition, C50 (multiplier)"),
    ParamSpec("diacid_clearance", 1.0, 0.2, 5.0, "x", "diacid elimination rate ke (multiplier)"),
    ParamSpec("diacid_volume", 1.0, 0.3, 3.0, "x", "diacid apparent volume V/F (multiplier)"),
    ParamSpec("absorption", 1.0, 0.3, 3.0, "x", "diacid absorption rate ka (multiplier)"),
    ParamSpec("renin_feedback", 1.0, 0.0, 5.0, "x",
              "strength of the AngII -> renin feedback, Fmax - 1 (multiplier)"),
    ParamSpec("map_baseline", 1.0, 0.6, 1.6, "x", "untreated mean arterial pressure (multiplier)"),
    ParamSpec("pulse_pressure", 1.0, 0.4, 2.5, "x", "untreated pulse pressure (multiplier)"),
    ParamSpec("hr_baseline", 1.0, 0.5, 2.0, "x", "untreated heart rate (multiplier)"),
    ParamSpec("bp_sensitivity", 1.0, 0.0, 5.0, "x",
              "blood-pressure sensitivity to AT1R-bound AngII, a_v and a_n (multiplier)"),
)}


@dataclass(frozen=True)
class ParameterSet:
    """A named parameter set: `model` is "reference" or "clinical"."""

    name: str
    model: str
    common: dict = field(default_factory=dict)
    renal: dict = field(default_factory=dict)
    about: str = ""

    def values(self, renal_function: str = "normal") -> dict[str, float]:
        """Common values updated with the renal-function-specific ones."""
        out = dict(self.common)
        out.update(self.renal.get(renal_function, {}))
        return out

    def names(self) -> set[str]:
        """Every parameter name of the set."""
        names = set(self.common)
        for v in self.renal.values():
            names |= set(v)
        return names


@cache
def load_parameters(name: str) -> ParameterSet:
    """The packaged parameter set `name` ("reference" or "clinical")."""
    if name not in PARAMETER_SETS:
        raise ScenarioError("parameters",
            f"must be one of {', '.join(PARAMETER_SETS)}, got {name!r}")
    raw = json.loads(resources.files("twin.data").joinpath(f"{name}.json").read_text())
    return ParameterSet(name=name, model=raw.get("model", name), common=raw["common"],
                        renal=raw["renal"], about=raw.get("about", ""))


PARAMETER_SETS = ("clinical", "reference")
