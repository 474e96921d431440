"""ACE2 "infection" extension (Barbiero et al. 2020): ACE2 activity k2 and the IR index.

dk2/dt = k_in AngII - (ln2 / 2 h) k2 while infected (else 0);
dIR/dt = 0.15 (k2 - k_ACE2) + 0.001 C_diacid + 0.1 G - ln2 k_out IR, k_out = 0.05 infected, 1 not.
Rates in 1/h; AngII in the model's concentration unit; G in mmol/L; IR dimensionless.
"""

from __future__ import annotations

from torch import Tensor

from twin.glucose import LN2


def ace2_rate(k2: Tensor, ang2: Tensor, infected: Tensor, k_in: Tensor | float) -> Tensor:
    """dk2/dt (1/h^2): ACE2 activity driven by AngII while infected, constant otherwise."""
    return infected * (k_in * ang2 - (LN2 / 2.0) * k2)


def ir_rate(ir: Tensor, k2: Tensor, k_ace2: Tensor | float, diacid: Tensor, glucose: Tensor,
            infected: Tensor, p: dict) -> Tensor:
    """dIR/dt (1/h) of the injury/inflammatory-response index."""
    k_out = infected * p["k_out_infected"] + (1.0 - infected) * p["k_out_not_infected"]
    return (p["IR_gain_ACE2"] * (k2 - k_ace2) + p["IR_gain_diacid"] * diacid
            + p["IR_gain_glu"] * glucose - LN2 * k_out * ir)


def ir_steady(glucose: Tensor, p: dict) -> Tensor:
    """Untreated, uninfected IR steady state 0.1 G / (ln2 k_out)."""
    return p["IR_gain_glu"] * glucose / (LN2 * p["k_out_not_infected"])
