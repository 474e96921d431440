"""Drug library: active-diacid PK (one compartment, first-order absorption) and Hill PD.

Values come from Ford Versypt et al. 2017 (ACEInhibPKPD), packaged in twin/data/drugs.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class DrugPK:
    """PK/PD constants of one drug for one renal function.

    ka_per_h, ke_per_h: absorption and elimination rates (1/h); vf_ml: apparent volume V/F (mL);
    c50_ng_per_ml: diacid concentration of half-maximal ACE inhibition; n_hill: Hill exponent.
    """

    drug: str
    renal_function: str
    ka_per_h: float
    ke_per_h: float
    vf_ml: float
    c50_ng_per_ml: float
    n_hill: float
    auc_ng_h_per_ml: float
    tmax_h: float
    t_half_h: float
    nominal_dose_mg: float
    drug_class: str = "ACEi"


@cache
def _library() -> dict:
    text = resources.files("twin.data").joinpath("drugs.json").read_text()
    return json.loads(text)["drugs"]


DRUG_NAMES: tuple[str, ...] = tuple(sorted(_library()))


def drug_pk(drug: str, renal_function: str = "normal") -> DrugPK:
    """PK/PD of `drug` for `renal_function`, falling back to the other renal variant if absent."""
    variants = _library()[drug]
    entry = variants.get(renal_function) or next(iter(variants.values()))
    return DrugPK(
        drug=drug, renal_function=renal_function, ka_per_h=entry["ka_per_h"],
        ke_per_h=entry["ke_per_h"], vf_ml=entry["vf_ml"], c50_ng_per_ml=entry["c50_ng_per_ml"],
        n_hill=entry["n_hill"], auc_ng_h_per_ml=entry["auc_ng_h_per_ml"],
        tmax_h=entry["tmax_h"], t_half_h=entry["t_half_h"],
        nominal_dose_mg=entry["nominal_dose_mg"], drug_class=entry.get("class", "ACEi"),
    )
