"""Copy the published numbers the twin needs from ../shared into twin/data/*.json.

Run once from the project root: `.venv/bin/python scripts/build_twin_data.py`. The shipped
package then never reads ../shared.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = ROOT / "twin" / "data"


def drug_library() -> dict:
    """Diacid PK (ka, ke, V/F) and Hill PD (C50, n) per drug and renal function."""
    src = json.loads((SHARED / "clinical" / "ace_inhibitors.json").read_text())
    drugs: dict = {}
    entries = list(src["studies"]) + list(src["pk_library"])
    for e in entries:
        pk = e["PK"]
        d = pk["active_diacid"]
        drugs.setdefault(e["drug"], {})[e["renal_function"]] = {
            "ka_per_h": d["ka_per_h"], "ke_per_h": d["ke_per_h"], "vf_ml": d["V_over_F_mL"],
            "auc_ng_h_per_ml": d["AUC_ng_h_per_mL"], "tmax_h": d["tmax_h"],
            "t_half_h": d["t_half_h"], "c50_ng_per_ml": pk["C50_ng_per_mL"],
            "n_hill": pk["n_Hill"], "nominal_dose_mg": pk["nominal_dose_mg"],
            "class": "ACEi", "source": e["id"] + " (ace_inhibitors.json, Ford Versypt et al. 2017)",
        }
    return {"about": "Active-diacid PK and Hill PD per drug and renal function, copied from "
                     "../shared/clinical/ace_inhibitors.json. A missing renal variant falls back "
                     "to the other one.", "drugs": drugs}


def shionoiri() -> dict:
    """The benazepril 5 mg single-dose time courses (Shionoiri et al. 1992)."""
    src = json.loads((SHARED / "clinical" / "ace_inhibitors.json").read_text())
    out = {}
    for s in src["studies"]:
        out[s["renal_function"]] = {
            "times_h": s["sampling_times_h"], "dose_mg": s["dose_mg"],
            "series": {k: {"values": v["values"], "errors": v["errors"]}
                       for k, v in s["measured_series"].items()},
            "published_rmse": s["published_best_fit"]["RMSE_best_published"],
            "pk_summary": src["benazepril_PK_summary"][s["renal_function"]]["benazeprilat_diacid"],
        }
    return {"about": "Shionoiri et al. 1992, digitized by Ford Versypt et al. 2017", "studies": out}


def reference_parameters() -> dict:
    """The values `call_infection` actually uses (MODEL_SPEC.md section 3), bugs included."""
    src = json.loads((SHARED / "science" / "params.json").read_text())
    mats, hard = src["mat_files"], src["hardcoded"]

    def mat(file: str, name: str) -> float:
        return float(mats[file][name]["value"])

    common = {k: float(v["value_used"]) for k, v in hard["glucose_dependent_rates"].items()}
    common.update({k: float(v["value_used"]) for k, v in
                   hard["glucose_independent_rates"].items()})
    pk = "PK_params_benazeprilnormal.mat"
    for name in ("C50", "n_Hill", "k_degr_Renin", "k_degr_AngI", "k_degr_AGT", "AngI_conc_t0",
                 "AngII_conc_t0", "Renin_conc_t0", "AGT_conc_t0", "Mw_AngI", "Mw_AngII",
                 "Mw_Renin", "Mw_AGT"):
        common[name] = mat(pk, name)
    half = hard["half_lives_h"]
    common["h_AngII"] = half["h_ANGII"]["value_used"]
    common["h_A17"] = half["h_ANG17"]["value_used"]
    common["h_ATR"] = half["h_ATR"]["value_used"]
    ics = hard["initial_conditions_hardcoded"]
    common["A17_t0"] = ics["ANG17_conc_t0"]["value"]
    common["AT1R_t0"] = ics["AT1R_conc_t0"]["value"]
    common["AT2R_t0"] = ics["AT2R_conc_t0"]["value"]
    inf = hard["infection_extension"]
    for k in ("k_in", "k_out_infected", "k_out_not_infected", "IR_gain_ACE2", "IR_gain_diacid",
              "IR_gain_glu"):
        common[k] = inf[k]["value"]
    common["ANGII_Plot"] = hard["output_conversion"]["ANGII_Plot"]["value"]
    renal = {}
    for rf in ("normal", "impaired"):
        f = f"params_benazepril{rf}.mat"
        renal[rf] = {k: mat(f, k) for k in ("k_cat_Renin", "k_feedback", "feedback_capacity",
                                            "ka_diacid", "ke_diacid", "VF_diacid")}
    return {"name": "reference", "about": "Barbiero et al. 2020 infection-RAS model exactly as "
            "published (MODEL_SPEC.md sections 2-8), bugs included: k_AGT 1000x, claimed umol/L "
            "units, glucose argument in IR.", "common": common, "renal": renal}


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "drugs.json").write_text(json.dumps(drug_library(), indent=1) + "\n")
    (DATA / "reference.json").write_text(json.dumps(reference_parameters(), indent=1) + "\n")
    (DATA / "shionoiri1992.json").write_text(json.dumps(shionoiri(), indent=1) + "\n")


if __name__ == "__main__":
    main()
