"""Renin-angiotensin system right-hand sides (concentrations per hour).

`reference_rates`: the 7 RAS equations of Barbiero et al. 2020 / Pilvankar et al. 2018 exactly as
published (MODEL_SPEC.md section 7). `clinical_rates`: our corrected model in nmol/L with a
bounded renin feedback, a chymase (ACE-independent) AngII pathway and Ford Versypt et al. 2017
AngI/AngII half-lives; see docs/model.md.
"""

from __future__ import annotations

import torch
from torch import Tensor

from twin.glucose import LN2, linear_rate


def reference_rates(y: Tensor, p: dict, glucose: Tensor, inhibition: Tensor, k2: Tensor
                    ) -> tuple[Tensor, ...]:
    """d/dt of (AGT, renin, AngI, AngII, Ang1-7, AT1R-bound, AT2R-bound), published form."""
    agt, ren, a1, a2, a17, b1, b2 = (y[..., i] for i in range(7))
    c_ren = linear_rate(p["c_Renin_a"], p["c_Renin_b"], glucose)
    c_ace = linear_rate(p["c_ACE_a"], p["c_ACE_b"], glucose)
    c_at1 = linear_rate(p["c_AT1_a"], p["c_AT1_b"], glucose)
    d_a = p["AngII_conc_t0"] - a2
    conv = c_ace * a1 * (1.0 - inhibition)
    d_agt = p["k_AGT"] - (c_ren + p["k_degr_AGT"]) * agt
    d_ren = (p["k_degr_Renin"] * p["Renin_conc_t0"]
             + p["k_feedback"] * d_a * (1.0 - d_a / p["feedback_capacity"])
             - p["k_degr_Renin"] * ren)
    d_a1 = (c_ren * agt + p["k_cat_Renin"] * (ren - p["Renin_conc_t0"])
            - (p["k_degr_AngI"] + p["k_NEP"] + k2) * a1 - conv)
    k_deg2 = LN2 / p["h_AngII"]
    d_a2 = conv - (c_at1 + p["k_APA"] + k2 + p["k_AT2"] + k_deg2) * a2
    d_a17 = p["k_NEP"] * a1 + k2 * a2 - (LN2 / p["h_A17"]) * a17
    k_atr = LN2 / p["h_ATR"]
    d_b1 = c_at1 * a2 - k_atr * b1
    d_b2 = p["k_AT2"] * a2 - k_atr * b2
    return d_agt, d_ren, d_a1, d_a2, d_a17, d_b1, d_b2


def glucose_factor(a: Tensor | float, b: Tensor | float, glucose: Tensor, g0: Tensor) -> Tensor:
    """Pilvankar rate (a G + b) relative to its value at the steady-state glucose g0."""
    return linear_rate(a, b, glucose) / linear_rate(a, b, g0)


def renin_feedback(signal: Tensor, f_max: Tensor, gamma: Tensor) -> Tensor:
    """Relative renin secretion F(S) = Fmax / (1 + (Fmax - 1) S^gamma); F(1) = 1, F(0) = Fmax.

    S is the (lagged) AngII level relative to the personal baseline; F is always positive.
    """
    s = signal.clamp(min=1e-9)
    return f_max / (1.0 + (f_max - 1.0) * s ** gamma)


def clinical_rates(y: Tensor, p: dict, glucose: Tensor | None, inhibition: Tensor, k2: Tensor
                   ) -> tuple[Tensor, ...]:
    """d/dt of (AGT, renin, AngI, AngII, Ang1-7, AT1R-bound, AT2R-bound, feedback signal).

    All concentrations in nmol/L; `glucose` is None when it is constant. `p` holds the
    personalised production terms (see `twin.models.ClinicalModel._personalise`).
    """
    agt, ren, a1, a2, a17, b1, b2, sig = (y[..., i] for i in range(8))
    if glucose is None:  # constant glucose: every factor is 1 at the steady-state glucose
        m_ren = m_ace = m_at1 = 1.0
    else:
        g0 = p["g0"]
        m_ren = glucose_factor(p["c_Renin_a"], p["c_Renin_b"], glucose, g0)
        m_ace = glucose_factor(p["c_ACE_a"], p["c_ACE_b"], glucose, g0)
        m_at1 = glucose_factor(p["c_AT1_a"], p["c_AT1_b"], glucose, g0)
    prod1 = p["k_renin"] * ren * m_ren * agt / p["agt0"]
    conv = p["k_conv"] * (p["f_ace"] * m_ace * (1.0 - inhibition) + (1.0 - p["f_ace"])) * a1
    d_agt = p["k_agt"] - prod1 - p["k_degr_AGT"] * agt
    d_ren = p["k_degr_Renin"] * (p["renin0"] * renin_feedback(sig, p["f_max"], p["gamma_fb"])
                                 - ren)
    d_a1 = prod1 - conv - (p["k_other1"] + k2) * a1
    k_at1 = p["k_at1"] * m_at1
    d_a2 = conv - (k_at1 + p["k_other2"] + k2) * a2
    d_a17 = p["k_NEP"] * a1 + k2 * a2 - (LN2 / p["h_A17"]) * a17
    k_atr = LN2 / p["h_ATR"]
    d_b1 = k_at1 * a2 - k_atr * b1
    d_b2 = p["k_at2"] * a2 - k_atr * b2
    d_sig = (a2 / p["ang2_0"] - sig) / p["tau_fb"]
    return d_agt, d_ren, d_a1, d_a2, d_a17, d_b1, d_b2, d_sig


def positive(x: Tensor) -> Tensor:
    """Clamp tiny negative round-off of a concentration to 0 for reporting."""
    return torch.clamp(x, min=0.0)
