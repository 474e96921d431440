"""The published recipe (Barbiero et al., digital-patient), re-implemented as the anchor:

two GAT layers (2 heads then 1, hidden size = window size, feature and attention dropout
0.2) over the variable graph, each node's input is its last ``window`` hourly values, output
the next hourly value; trained with next-step MSE (Adagrad, lr 0.01) on dense simulated
trajectories; forecasts by rolling the one-step model forward; intervals by inductive
conformal prediction on one-step residuals (the publication used 99 %; here the level is the
request's), the same half-width at every lead time.

On ward data the sparse observations are put on the hourly grid by linear interpolation
(held flat after the last one); an endpoint never observed is held at the training mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from twin.forecast.engines import LEAD_H, Engine
from twin.forecast.features import Case, Normaliser, regular_series
from twin.forecast.gat import GATLayer, adjacency


@dataclass(frozen=True)
class PublishedConfig:
    window: int = 10
    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.01
    seed: int = 0


class PublishedNet(nn.Module):
    """GATConv(window -> window, 2 heads) -> ReLU -> mean over heads -> GATConv(window -> 1)."""

    def __init__(self, cfg: PublishedConfig) -> None:
        super().__init__()
        adj = adjacency(symmetric=False, self_loops=True)
        w = cfg.window
        self.conv1 = GATLayer(w, w, 2, adj, concat=False, feat_drop=0.2, attn_drop=0.2)
        self.conv2 = GATLayer(w, 1, 1, adj, concat=False, feat_drop=0.2, attn_drop=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, N, window] standardised -> next value [B, N]."""
        return self.conv2(torch.relu(self.conv1(x))).squeeze(-1)


class PublishedEngine(Engine):
    name = "published_gat"

    def __init__(self, net: PublishedNet, normaliser: Normaliser, cfg: PublishedConfig) -> None:
        self.net, self.normaliser, self.cfg = net.eval(), normaliser, cfg

    @torch.no_grad()
    def rollout(self, window: torch.Tensor, steps: int) -> torch.Tensor:
        """[B, N, window] -> [B, N, steps + 1] (lead 0 is the last input value)."""
        out = [window[..., -1]]
        for _ in range(steps):
            nxt = self.net(window)
            out.append(nxt)
            window = torch.cat([window[..., 1:], nxt.unsqueeze(-1)], dim=-1)
        return torch.stack(out, dim=-1)

    def predict_batch(self, cases: Sequence[Case]) -> np.ndarray:
        x = np.stack([regular_series(c, self.normaliser, self.cfg.window) for c in cases])
        traj = self.rollout(torch.as_tensor(x, dtype=torch.float32), len(LEAD_H) - 1)
        z = traj.double().numpy()
        return z * self.normaliser.std[None, :, None] + self.normaliser.mean[None, :, None]

    @torch.no_grad()
    def one_step(self, cases: Sequence[Case]) -> np.ndarray:
        """One-step-ahead prediction (model scale) ``[B, E]``, for the conformal scores."""
        return self.predict_batch(cases)[:, :, 1]

    def state(self) -> dict[str, Any]:
        return {"config": asdict(self.cfg), "weights": self.net.state_dict()}

    @classmethod
    def from_bundle(cls, state: dict[str, Any], weights: dict[str, Any], normaliser: Any,
                    config: dict[str, Any]) -> Engine:
        """Rebuild the engine from its stored state (see ``twin.forecast.registry``)."""
        return cls.from_state({**state, "weights": weights[cls.name]}, normaliser)

    @classmethod
    def from_state(cls, state: dict[str, Any], normaliser: Normaliser) -> PublishedEngine:
        cfg = PublishedConfig(**state["config"])
        net = PublishedNet(cfg)
        net.load_state_dict(state["weights"])
        return cls(net, normaliser, cfg)


def train_published(
    series_z: np.ndarray,
    normaliser: Normaliser,
    cfg: PublishedConfig = PublishedConfig(),
    progress: Callable[[int, float], None] | None = None,
) -> PublishedEngine:
    """Fit on dense hourly trajectories ``series_z [P, E, T]`` (model scale): every window of
    ``cfg.window`` hours -> the next hour, mean squared error on the standardised scale."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    s = (series_z - normaliser.mean[None, :, None]) / normaliser.std[None, :, None]
    s = torch.as_tensor(s, dtype=torch.float32)
    w = cfg.window
    x = s.unfold(2, w + 1, 1)  # [P, E, T-w, w+1]
    x = x.permute(0, 2, 1, 3).reshape(-1, s.shape[1], w + 1)
    net = PublishedNet(cfg)
    opt = torch.optim.Adagrad(net.parameters(), lr=cfg.lr)
    net.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for start in range(0, len(x), cfg.batch_size):
            batch = x[perm[start : start + cfg.batch_size]]
            loss = nn.functional.mse_loss(net(batch[..., :w]), batch[..., w])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        if progress:
            progress(epoch, total / len(x))
    return PublishedEngine(net.eval(), normaliser, cfg)
