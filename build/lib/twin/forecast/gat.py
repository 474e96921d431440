"""Graph attention over the graph of physiological variables (plain PyTorch).

Nodes are the 11 forecast endpoints; edges follow the mechanism of the twin (renin makes
AngI, ACE turns AngI into AngII, the drug inhibits ACE, AngII feeds back on renin and raises
vascular resistance and so pressure, the baroreflex couples pressure and heart rate).
"""

from __future__ import annotations

import torch
from torch import nn

from twin.forecast.endpoints import INDEX, NAMES

#: Directed mechanism edges (source -> target) between endpoint names.
MECHANISM_EDGES: tuple[tuple[str, str], ...] = (
    ("renin_pg_per_ml", "pra_ng_per_ml_per_h"),
    ("renin_pg_per_ml", "angI_pg_per_ml"),
    ("angI_pg_per_ml", "angII_pg_per_ml"),
    ("angI_pg_per_ml", "ang17_pg_per_ml"),
    ("angII_pg_per_ml", "ang17_pg_per_ml"),
    ("diacid_ng_per_ml", "ace_inhibition_pct"),
    ("ace_inhibition_pct", "angII_pg_per_ml"),
    ("ace_inhibition_pct", "angI_pg_per_ml"),
    ("angII_pg_per_ml", "renin_pg_per_ml"),
    ("angII_pg_per_ml", "map_mmhg"),
    ("map_mmhg", "sbp_mmhg"),
    ("map_mmhg", "dbp_mmhg"),
    ("map_mmhg", "hr_bpm"),
    ("hr_bpm", "map_mmhg"),
    ("sbp_mmhg", "dbp_mmhg"),
)


def adjacency(symmetric: bool = True, self_loops: bool = True) -> torch.Tensor:
    """Boolean adjacency ``A[target, source]`` over the endpoint nodes."""
    n = len(NAMES)
    a = torch.zeros(n, n, dtype=torch.bool)
    for src, dst in MECHANISM_EDGES:
        a[INDEX[dst], INDEX[src]] = True
        if symmetric:
            a[INDEX[src], INDEX[dst]] = True
    if self_loops:
        a |= torch.eye(n, dtype=torch.bool)
    return a


class GATLayer(nn.Module):
    """Multi-head graph attention (Velickovic et al. 2018) on a fixed dense adjacency.

    ``x`` is ``[B, N, F_in]``; returns ``[B, N, heads * F_out]`` (concat) or ``[B, N, F_out]``
    (mean over heads).
    """

    def __init__(
        self,
        f_in: int,
        f_out: int,
        heads: int,
        adj: torch.Tensor,
        concat: bool = True,
        feat_drop: float = 0.0,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.heads, self.f_out, self.concat = heads, f_out, concat
        self.lin = nn.Linear(f_in, heads * f_out, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, f_out))
        self.att_dst = nn.Parameter(torch.empty(heads, f_out))
        self.bias = nn.Parameter(torch.zeros(heads * f_out if concat else f_out))
        self.feat_drop, self.attn_drop = nn.Dropout(feat_drop), nn.Dropout(attn_drop)
        self.register_buffer("mask", ~adj.clone())
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h = self.lin(self.feat_drop(x)).view(b, n, self.heads, self.f_out)
        e_src = (h * self.att_src).sum(-1)  # [B, N, H]
        e_dst = (h * self.att_dst).sum(-1)
        logits = nn.functional.leaky_relu(e_dst.unsqueeze(2) + e_src.unsqueeze(1), 0.2)
        logits = logits.masked_fill(self.mask.unsqueeze(0).unsqueeze(-1), float("-inf"))
        alpha = self.attn_drop(torch.softmax(logits, dim=2))  # [B, N_dst, N_src, H]
        out = torch.einsum("bijh,bjhf->bihf", alpha, h)
        out = out.reshape(b, n, -1) if self.concat else out.mean(dim=2)
        return out + self.bias
