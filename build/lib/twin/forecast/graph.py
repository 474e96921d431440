"""The graph forecaster: graph attention over the physiological-variable graph maps the
observed history, covariates and planned regimen to the whole future trajectory at once
(every endpoint, every hourly lead 0..72 h), trained on the virtual cohort's noise-free
trajectories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from twin.forecast.endpoints import NAMES
from twin.forecast.engines import LEAD_H, Engine
from twin.forecast.features import (
    N_COVARIATES,
    N_EXPOSURE,
    N_NODE_FEATURES,
    Case,
    Normaliser,
    covariates,
    exposure,
    node_features,
)
from twin.forecast.gat import GATLayer, adjacency


@dataclass(frozen=True)
class GraphConfig:
    hidden: int = 64
    heads: int = 4
    layers: int = 3
    epochs: int = 60
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-5
    seed: int = 0


class GraphNet(nn.Module):
    """Node encoder + covariate embedding -> stacked residual GAT layers -> trajectory decoder.

    The decoder gives each node a baseline trajectory plus a node- and patient-specific linear
    response to per-lead dose-exposure features (so the planned regimen shapes the forecast).
    """

    def __init__(self, cfg: GraphConfig) -> None:
        super().__init__()
        n, h = len(NAMES), cfg.hidden
        self.node_in = nn.Linear(N_NODE_FEATURES, h)
        self.node_emb = nn.Parameter(torch.randn(n, h) * 0.1)
        self.cov = nn.Sequential(nn.Linear(N_COVARIATES, h), nn.GELU(), nn.Linear(h, h))
        adj = adjacency(symmetric=True)
        self.gats = nn.ModuleList(
            GATLayer(h, h // cfg.heads, cfg.heads, adj) for _ in range(cfg.layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(cfg.layers))
        self.ffs = nn.ModuleList(
            nn.Sequential(nn.Linear(h, 2 * h), nn.GELU(), nn.Linear(2 * h, h))
            for _ in range(cfg.layers)
        )
        self.base = nn.Linear(h, len(LEAD_H))
        self.sens = nn.Linear(h, N_EXPOSURE)

    def forward(self, nodes: torch.Tensor, cov: torch.Tensor, expo: torch.Tensor) -> torch.Tensor:
        """nodes [B, N, Fn], cov [B, C], expo [B, L, Fe] -> [B, N, L] standardised values."""
        x = self.node_in(nodes) + self.node_emb + self.cov(cov).unsqueeze(1)
        for gat, norm, ff in zip(self.gats, self.norms, self.ffs, strict=True):
            x = norm(x + nn.functional.elu(gat(x)))
            x = x + ff(x)
        return self.base(x) + torch.einsum("bnf,blf->bnl", self.sens(x), expo)


def featurise(cases: Sequence[Case], normaliser: Normaliser) -> tuple[torch.Tensor, ...]:
    """The three input tensors (float32) for a batch of cases."""
    nodes = np.stack([node_features(c, normaliser) for c in cases])
    cov = np.stack([covariates(c) for c in cases])
    expo = np.stack([exposure(c, LEAD_H) for c in cases])
    return tuple(torch.as_tensor(a, dtype=torch.float32) for a in (nodes, cov, expo))


class GraphEngine(Engine):
    """The graph forecaster as an engine."""

    name = "graph"

    def __init__(self, net: GraphNet, normaliser: Normaliser, cfg: GraphConfig) -> None:
        self.net, self.normaliser, self.cfg = net.eval(), normaliser, cfg

    @torch.no_grad()
    def predict_batch(self, cases: Sequence[Case]) -> np.ndarray:
        out = self.net(*featurise(cases, self.normaliser)).double().numpy()
        return out * self.normaliser.std[None, :, None] + self.normaliser.mean[None, :, None]

    def state(self) -> dict[str, Any]:
        return {"config": asdict(self.cfg), "weights": self.net.state_dict()}

    @classmethod
    def from_bundle(cls, state: dict[str, Any], weights: dict[str, Any], normaliser: Any,
                    config: dict[str, Any]) -> Engine:
        """Rebuild the engine from its stored state (see ``twin.forecast.registry``)."""
        return cls.from_state({**state, "weights": weights[cls.name]}, normaliser)

    @classmethod
    def from_state(cls, state: dict[str, Any], normaliser: Normaliser) -> GraphEngine:
        cfg = GraphConfig(**state["config"])
        net = GraphNet(cfg)
        net.load_state_dict(state["weights"])
        return cls(net, normaliser, cfg)


def train_graph(
    cases: Sequence[Case],
    truth_z: np.ndarray,
    normaliser: Normaliser,
    cfg: GraphConfig = GraphConfig(),
    progress: Callable[[int, float], None] | None = None,
) -> GraphEngine:
    """Fit on cases with their noise-free truth ``truth_z [B, E, L]`` (model scale, LEAD_H).

    Loss: mean squared error on the standardised scale over every endpoint and lead.
    """
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    inputs = featurise(cases, normaliser)
    y = torch.as_tensor(
        (truth_z - normaliser.mean[None, :, None]) / normaliser.std[None, :, None],
        dtype=torch.float32,
    )
    net = GraphNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, -(-len(cases) // cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    net.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(cases), generator=gen)
        total = 0.0
        for start in range(0, len(cases), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            pred = net(*(t[idx] for t in inputs))
            loss = nn.functional.mse_loss(pred, y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if progress:
            progress(epoch, total / len(cases))
    return GraphEngine(net, normaliser, cfg)
