"""The two model variants behind `simulate`: state layout, initial state, right-hand side, outputs.

`ReferenceModel` is the published 9-state infection-RAS model (bugs included); `ClinicalModel`
is our corrected, personalised 13-state RAS + PK/PD + blood-pressure model (docs/model.md).
Parameters are tensors of shape [B]; states [..., B, n]; times in hours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from twin import glucose as glu
from twin import hemodynamics as hd
from twin.drugs import drug_pk
from twin.errors import ScenarioError
from twin.infection import ace2_rate, ir_rate
from twin.parameters import PATIENT_PARAMETERS, ParameterSet
from twin.pk import diacid_ng_per_ml, hill_fraction
from twin.ras import clinical_rates, reference_rates
from twin.scenario import Scenario

DTYPE = torch.float64


@dataclass
class Inputs:
    """Time-dependent inputs of a batch: doses, glucose, infection."""

    dose_t: Tensor  # [B, K] h
    dose_mg: Tensor  # [B, K]
    g_const: Tensor  # [B] mmol/L (0 where a profile is used)
    is_normal: Tensor  # [B] 1.0 where glucose == "normal"
    is_diabetic: Tensor  # [B]
    infected: Tensor  # [B] 1.0 where infected
    onset: Tensor  # [B] h
    breakpoints: tuple[float, ...]

    def glucose(self, t: Tensor | float) -> Tensor:
        """G(t) in mmol/L, shape [B] (or [T, B] for t of shape [T, 1])."""
        g = self.g_const
        if bool(self.is_normal.any()):
            g = g + self.is_normal * glu.profile_mmol_per_l(t, "normal")
        if bool(self.is_diabetic.any()):
            g = g + self.is_diabetic * glu.profile_mmol_per_l(t, "diabetic")
        return g

    def infection(self, t: Tensor | float) -> Tensor:
        """1.0 while infected (t >= onset), else 0.0."""
        return self.infected * (torch.as_tensor(t, dtype=DTYPE) >= self.onset).to(DTYPE)


def build_inputs(scenarios: Sequence[Scenario], t_end: float) -> Inputs:
    """Dose tables (padded with zero doses), glucose and infection inputs of a batch."""
    tables = [s.regimen.dose_times_h(t_end) for s in scenarios]
    k = max(1, max(len(tb) for tb in tables))
    dose_t = np.zeros((len(scenarios), k))
    dose_mg = np.zeros((len(scenarios), k))
    for i, tb in enumerate(tables):
        for j, (t, d) in enumerate(tb):
            dose_t[i, j], dose_mg[i, j] = t, d
    breaks = {t for tb in tables for t, _ in tb}
    breaks |= {s.infection_onset_h for s in scenarios if s.infected}
    as_t = lambda xs: torch.tensor(xs, dtype=DTYPE)  # noqa: E731
    return Inputs(
        dose_t=as_t(dose_t), dose_mg=as_t(dose_mg),
        g_const=as_t([0.0 if isinstance(s.glucose, str) else s.glucose for s in scenarios]),
        is_normal=as_t([float(s.glucose == "normal") for s in scenarios]),
        is_diabetic=as_t([float(s.glucose == "diabetic") for s in scenarios]),
        infected=as_t([float(s.infected) for s in scenarios]),
        onset=as_t([s.infection_onset_h for s in scenarios]),
        breakpoints=tuple(sorted(b for b in breaks if 0.0 < b < t_end)),
    )


def _stack(values: Sequence[Mapping[str, float]], names: set[str]) -> dict[str, Tensor]:
    return {n: torch.tensor([v[n] for v in values], dtype=DTYPE) for n in names}


def _check_overrides(overrides: Mapping[str, Tensor], allowed: set[str], b: int
                     ) -> dict[str, Tensor]:
    out = {}
    for name, value in overrides.items():
        if name not in PATIENT_PARAMETERS and name not in allowed:
            raise ScenarioError("overrides", f"unknown parameter {name!r}; allowed: "
                             f"{', '.join(PATIENT_PARAMETERS)} or a parameter of the set")
        v = torch.as_tensor(value, dtype=DTYPE)
        out[name] = v.expand(b) if v.ndim == 0 else v
        if out[name].shape != (b,):
            raise ScenarioError("overrides", f"{name} must have shape [{b}], got {tuple(v.shape)}")
    return out


class BaseModel:
    """Shared plumbing: per-patient parameters, PK and outputs."""

    state_names: tuple[str, ...] = ()

    def __init__(self, pset: ParameterSet, scenarios: Sequence[Scenario], t_end: float,
                 overrides: Mapping[str, Tensor] | None = None) -> None:
        self.pset = pset
        self.scenarios = list(scenarios)
        self.inputs = build_inputs(self.scenarios, t_end)
        b = len(self.scenarios)
        self.overrides = _check_overrides(overrides or {}, pset.names(), b)
        vals = [pset.values(s.renal_function) for s in self.scenarios]
        p = _stack(vals, set(vals[0]))
        for name, v in self.overrides.items():
            if name in p:
                p[name] = v
        self.p = p
        self.pk = self._pk_parameters()

    def mult(self, name: str) -> Tensor | float:
        """The patient-level multiplier `name` (1.0 when not overridden)."""
        return self.overrides.get(name, 1.0)

    def _pk_parameters(self) -> dict[str, Tensor]:
        rows = [drug_pk(s.regimen.active_drug, s.renal_function) for s in self.scenarios]
        pk = {
            "ka": torch.tensor([r.ka_per_h for r in rows], dtype=DTYPE),
            "ke": torch.tensor([r.ke_per_h for r in rows], dtype=DTYPE),
            "vf": torch.tensor([r.vf_ml for r in rows], dtype=DTYPE),
            "c50": torch.tensor([r.c50_ng_per_ml for r in rows], dtype=DTYPE),
            "n": torch.tensor([r.n_hill for r in rows], dtype=DTYPE),
        }
        pk["ka"] = pk["ka"] * self.mult("absorption")
        pk["ke"] = pk["ke"] * self.mult("diacid_clearance")
        pk["vf"] = pk["vf"] * self.mult("diacid_volume")
        pk["c50"] = pk["c50"] * self.mult("ace_c50")
        return pk

    def diacid(self, t: Tensor | float) -> Tensor:
        """Diacid concentration (ng/mL), [B] for scalar t or [T, B] for t of shape [T, 1, 1]."""
        return diacid_ng_per_ml(t, self.inputs.dose_t, self.inputs.dose_mg, self.pk["ka"],
                                self.pk["ke"], self.pk["vf"])

    def atol(self) -> Tensor:
        """Absolute tolerance per state."""
        return 1e-9 * self.y0.detach().abs().amax(0).clamp(min=1e-6)


class ReferenceModel(BaseModel):
    """Barbiero et al. 2020 infection-RAS model as published (MODEL_SPEC.md sections 2-8)."""

    state_names = ("AGT", "Renin", "AngI", "AngII", "Ang17", "AT1R", "AT2R", "ACE2", "IR")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        p = self.p
        is_b = torch.tensor([s.regimen.active_drug == "benazepril" for s in self.scenarios])
        published = {"ka": p["ka_diacid"] * self.mult("absorption"),
                     "ke": p["ke_diacid"] * self.mult("diacid_clearance"),
                     "vf": p["VF_diacid"] * self.mult("diacid_volume"),
                     "c50": p["C50"] * self.mult("ace_c50"), "n": p["n_Hill"]}
        for k, v in published.items():
            self.pk[k] = torch.where(is_b, v, self.pk[k])
        self.glu_arg = torch.tensor(
            [{"normal": 1.0, "diabetic": 2.0}.get(s.glucose, 0.0) if isinstance(s.glucose, str)
             else s.glucose for s in self.scenarios], dtype=DTYPE)
        self.y0 = torch.stack([p["AGT_conc_t0"], p["Renin_conc_t0"], p["AngI_conc_t0"],
                               p["AngII_conc_t0"], p["A17_t0"], p["AT1R_t0"], p["AT2R_t0"],
                               p["k_ACE2"], p["k_ACE2"]], -1)

    def rhs(self, t: float, y: Tensor) -> Tensor:
        """d/dt of the 9 published states."""
        c = self.diacid(t)
        inh = hill_fraction(c, self.pk["c50"], self.pk["n"])
        g = self.inputs.glucose(t)
        inf = self.inputs.infection(t)
        k2, ir = y[..., 7], y[..., 8]
        ras = reference_rates(y, self.p, g, inh, k2)
        d_k2 = ace2_rate(k2, y[..., 3], inf, self.p["k_in"])
        d_ir = ir_rate(ir, k2, self.p["k_ACE2"], c, self.glu_arg, inf, self.p)
        return torch.stack([*ras, d_k2, d_ir], -1)

    def columns(self, times_h: np.ndarray, y: Tensor) -> dict[str, Tensor]:
        """The published DKD_*.csv columns (t in days; published units), each [B, T]."""
        p = {k: v[:, None] for k, v in self.p.items()}
        t = torch.as_tensor(times_h, dtype=DTYPE)
        c = self.diacid(t[:, None, None]).T
        inh = 100.0 * hill_fraction(c, self.pk["c50"][:, None], self.pk["n"][:, None])
        s = [y[..., i] for i in range(9)]
        return {
            "t": (t / 24.0).expand_as(s[0]),
            "angI": s[2] * p["Mw_AngI"] * 1e3, "Inhibition": inh,
            "Renin": s[1] * p["Mw_Renin"] * 1e3, "AGT": s[0] * p["Mw_AGT"] * 1e3,
            "angII": s[3], "angII_norm": s[3] * 1e-3 / p["ANGII_Plot"] * 100.0,
            "diacid": c, "ang17": s[4], "at1r": s[5], "at2r": s[6], "ACE2": s[7], "IR": s[8],
        }

    def endpoints(self, times_h: np.ndarray, y: Tensor) -> dict[str, Tensor]:
        """Standard endpoints; published unit claims (umol/L x Mw x 1e3 = "pg/mL")."""
        col = self.columns(times_h, y)
        renin = col["Renin"]
        sbp, dbp = hd.default_bp(torch.tensor([s.age_years for s in self.scenarios], dtype=DTYPE))
        ones = torch.ones_like(renin)
        mapp = dbp + (sbp - dbp) / 3.0
        return {
            "angI_pg_per_ml": col["angI"], "angII_pg_per_ml": y[..., 3] * 1050.0 * 1e3,
            "renin_pg_per_ml": renin, "pra_ng_per_ml_per_h": 0.696 + 0.045 * renin,
            "ang17_pg_per_ml": y[..., 4] * 899.0 * 1e3, "diacid_ng_per_ml": col["diacid"],
            "ace_inhibition_pct": col["Inhibition"], "sbp_mmhg": sbp[:, None] * ones,
            "dbp_mmhg": dbp[:, None] * ones, "map_mmhg": mapp[:, None] * ones,
            "hr_bpm": 72.0 * ones, "at1r_bound": y[..., 5],
            "agt_pg_per_ml": col["AGT"], "ace2_per_h": y[..., 7], "ir_index": y[..., 8],
        }


class ClinicalModel(BaseModel):
    """Corrected, personalised RAS + PK/PD + blood-pressure model (nmol/L, hours, mmHg)."""

    state_names = ("AGT", "Renin", "AngI", "AngII", "Ang17", "AT1R", "AT2R", "FeedbackSignal",
                   "ACE2", "IR", "EffectSiteDiacid", "Volume", "BaroSetPoint")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        is_b = torch.tensor([s.regimen.active_drug == "benazepril" for s in self.scenarios])
        self.pk["c50"] = torch.where(is_b, self.pk["c50"] * self.p["benazepril_c50_factor"],
                                     self.pk["c50"])
        self._personalise()
        self.varying_glucose = bool(self.inputs.is_normal.any() or self.inputs.is_diabetic.any())
        self.any_infected = bool(self.inputs.infected.any())

    def _baseline(self, name: str, default: Tensor) -> Tensor:
        vals = [s.baseline.get(name) for s in self.scenarios]
        given = torch.tensor([v is not None for v in vals])
        measured = torch.tensor([v if v is not None else 0.0 for v in vals], dtype=DTYPE)
        return torch.where(given, measured, default)

    def _personalise(self) -> None:
        """Solve the production and set-point terms so the untreated steady state equals the
        personal baseline (or the renal group's Shionoiri baseline when none is given)."""
        p = self.p
        g0 = torch.tensor([glu.profile_mean(s.glucose) if isinstance(s.glucose, str)
                           else s.glucose for s in self.scenarios], dtype=DTYPE)
        p["g0"] = g0
        # Population defaults (Shionoiri baselines, taken at 5 mmol/L) follow the Pilvankar
        # glucose dependence: AngI with renin activity, AngII with renin activity x ACE.
        f_ren = (p["c_Renin_a"] * g0 + p["c_Renin_b"]) / (p["c_Renin_a"] * 5.0 + p["c_Renin_b"])
        f_ace = (p["c_ACE_a"] * g0 + p["c_ACE_b"]) / (p["c_ACE_a"] * 5.0 + p["c_ACE_b"])
        ang2 = self._baseline("angII_pg_per_ml", p["angII0_pg_per_ml"] * f_ren * f_ace
                              ) * self.mult("angII_baseline") / p["Mw_AngII"]
        ang1 = self._baseline("angI_pg_per_ml", p["angI0_pg_per_ml"] * f_ren) * self.mult(
            "angI_baseline") / p["Mw_AngI"]
        pra = self._baseline("pra_ng_per_ml_per_h", torch.full_like(g0, -1.0))
        renin_pg = torch.where(pra > 0, (pra - p["pra_intercept"]) / p["pra_slope"],
                               p["renin0_pg_per_ml"])
        renin_pg = self._baseline("renin_pg_per_ml", renin_pg) * self.mult("renin_baseline")
        ren = renin_pg / p["Mw_Renin"]
        c_at1 = p["c_AT1_a"] * g0 + p["c_AT1_b"]
        k_deg2 = glu.LN2 / p["h_AngII_pilvankar"]
        s2 = (p["k_A2_total"] - p["k_ACE2"]) / (c_at1 + p["k_APA"] + p["k_AT2"] + k_deg2)
        p["k_at1"] = s2 * c_at1
        p["k_at2"] = s2 * p["k_AT2"]
        p["k_other2"] = s2 * (p["k_APA"] + p["k_AT2"] + k_deg2)
        p["k_conv"] = p["k_A2_total"] * ang2 / ang1
        # AngI clearance other than conversion (NEP, ACE2, degradation); kept >= 0.05/h when a
        # baseline's AngII/AngI ratio asks for more conversion than the total clearance.
        p["k_other1"] = torch.clamp(p["k_A1_total"] - p["k_conv"] - p["k_ACE2"], min=0.05)
        prod1 = (p["k_conv"] + p["k_other1"] + p["k_ACE2"]) * ang1
        p["k_renin"] = prod1 / ren
        p["agt0"] = p["agt0_nM"]
        p["k_agt"] = p["k_degr_AGT"] * p["agt0"] + prod1
        p["renin0"], p["ang2_0"] = ren, ang2
        p["f_max"] = 1.0 + (p["f_max"] - 1.0) * self.mult("renin_feedback")
        p["tau_fb"] = p["tau_fb_h"]
        k_atr = glu.LN2 / p["h_ATR"]
        b1 = p["k_at1"] * ang2 / k_atr
        p["b1_0"] = b1
        sbp_d, dbp_d = hd.default_bp(torch.tensor([s.age_years for s in self.scenarios],
                                                  dtype=DTYPE))
        sbp = self._baseline("sbp_mmhg", sbp_d)
        dbp = self._baseline("dbp_mmhg", dbp_d)
        p["map0"] = (dbp + (sbp - dbp) / 3.0) * self.mult("map_baseline")
        p["pp0"] = (sbp - dbp) * self.mult("pulse_pressure")
        p["hr0"] = self._baseline("hr_bpm", p["hr0_bpm"]) * self.mult("hr_baseline")
        p["a_v"] = p["a_v"] * self.mult("bp_sensitivity")
        p["a_n"] = p["a_n"] * self.mult("bp_sensitivity")
        ir0 = p["IR_gain_glu"] * g0 / (glu.LN2 * p["k_out_not_infected"])
        a17 = (p["k_NEP"] * ang1 + p["k_ACE2"] * ang2) / (glu.LN2 / p["h_A17"])
        zero, one = torch.zeros_like(g0), torch.ones_like(g0)
        self.y0 = torch.stack([p["agt0"] * one, ren, ang1, ang2, a17, b1,
                               p["k_at2"] * ang2 / k_atr, one, p["k_ACE2"] * one, ir0, zero, one,
                               p["map0"]], -1)

    def atol(self) -> Tensor:
        scale = self.y0.detach().abs().amax(0)
        scale[10] = 1.0  # effect-site diacid starts at 0 (ng/mL)
        return 1e-9 * scale.clamp(min=1e-6)

    def rhs(self, t: float, y: Tensor) -> Tensor:
        """d/dt of the 13 clinical states."""
        p = self.p
        c = self.diacid(t)
        ce = y[..., 10]
        inh = hill_fraction(ce, self.pk["c50"], self.pk["n"])
        varying = self.varying_glucose
        g = self.inputs.glucose(t) if varying else p["g0"]
        inf = self.inputs.infection(t) if self.any_infected else 0.0
        k2 = y[..., 8]
        ras = clinical_rates(y, p, g if varying else None, inh, k2)
        d_k2 = ace2_rate(k2, y[..., 3], inf, p["k_in"])
        d_ir = ir_rate(y[..., 9], k2, p["k_ACE2"], c, g, inf, p)
        d_ce = p["ke0_per_h"] * (c - ce)
        x = hd.at1_ratio(y[..., 5], p["b1_0"])
        vol, p_ref = y[..., 11], y[..., 12]
        m = hd.mean_pressure(x, vol, p_ref, p)
        return torch.stack([*ras, d_k2, d_ir, d_ce, hd.volume_rate(vol, x, p),
                            hd.reset_rate(m, p_ref, p)], -1)

    def endpoints(self, times_h: np.ndarray, y: Tensor) -> dict[str, Tensor]:
        """Standard endpoints (pg/mL, ng/mL/h, ng/mL, %, mmHg, 1/min) and extras, [B, T]."""
        p = {k: v[:, None] for k, v in self.p.items()}
        t = torch.as_tensor(times_h, dtype=DTYPE)
        c = self.diacid(t[:, None, None]).T
        inh = hill_fraction(y[..., 10].clamp(min=0.0), self.pk["c50"][:, None],
                            self.pk["n"][:, None])
        renin = y[..., 1] * p["Mw_Renin"]
        x = hd.at1_ratio(y[..., 5], p["b1_0"])
        m = hd.mean_pressure(x, y[..., 11], y[..., 12], p)
        bp = hd.pressures(m, y[..., 12], p)
        return {
            "angI_pg_per_ml": y[..., 2] * p["Mw_AngI"],
            "angII_pg_per_ml": y[..., 3] * p["Mw_AngII"],
            "renin_pg_per_ml": renin, "pra_ng_per_ml_per_h": p["pra_intercept"]
            + p["pra_slope"] * renin, "ang17_pg_per_ml": y[..., 4] * p["Mw_A17"],
            "diacid_ng_per_ml": c, "ace_inhibition_pct": 100.0 * inh, **bp,
            "at1r_bound": y[..., 5], "agt_pg_per_ml": y[..., 0] * p["Mw_AGT"],
            "ace2_per_h": y[..., 8], "ir_index": y[..., 9],
        }

    def columns(self, times_h: np.ndarray, y: Tensor) -> dict[str, Tensor]:
        """The published column layout filled from this model (see docs/model.md)."""
        e = self.endpoints(times_h, y)
        t = torch.as_tensor(times_h, dtype=DTYPE)
        a2 = y[..., 3]
        return {
            "t": (t / 24.0).expand_as(a2), "angI": e["angI_pg_per_ml"],
            "Inhibition": e["ace_inhibition_pct"], "Renin": e["renin_pg_per_ml"],
            "AGT": e["agt_pg_per_ml"], "angII": a2,
            "angII_norm": a2 * 1e-3 / self.p["ang2_0"][:, None] * 100.0,
            "diacid": e["diacid_ng_per_ml"], "ang17": y[..., 4], "at1r": y[..., 5],
            "at2r": y[..., 6], "ACE2": y[..., 8], "IR": y[..., 9],
        }


def make_model(pset: ParameterSet, scenarios: Sequence[Scenario], t_end: float,
               overrides: Mapping[str, Tensor] | None = None) -> BaseModel:
    """The model class of `pset` built for a batch of scenarios."""
    cls = ReferenceModel if pset.model == "reference" else ClinicalModel
    return cls(pset, scenarios, t_end, overrides)
