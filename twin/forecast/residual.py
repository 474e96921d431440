"""A residual network over the state-space forecast, learnt on real ICU vital signs.

The state-space filter (:mod:`twin.forecast.state_space`) is Kalman-optimal for its own
Gaussian model; real readings are heavier-tailed and the vital signs inform one another. Per
endpoint a small MLP takes summaries of the patient's recent readings of all four vital signs
(last value, mean of the last 3 and 12, hours since the last reading, number of readings, each
relative to the state-space forecast), the other vital signs (respiratory rate, SpO2,
temperature) where measured, age, sex, hours since admission and the horizon, and outputs a
Laplace distribution of the reading at ``t + h``: a median correction ``d`` (added to the
state-space mean) and a scale ``b`` (mmHg or beats/min). It is trained on the train split
by the Laplace negative log-likelihood, so ``d`` targets the median (lowest absolute error)
and ``b`` the mean absolute error, which the conformal scores ``|y - mu| / b`` then calibrate.

``features`` is the one feature builder, used by training and evaluation on hourly grids and
by the per-patient forecast (``twin.forecast.vitals_model``) on one patient's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

VITALS: tuple[str, ...] = ("sbp_mmhg", "dbp_mmhg", "map_mmhg", "hr_bpm")
#: Other vital signs used where measured: (endpoint, centre, spread) in natural units.
AUX: tuple[tuple[str, float, float], ...] = (
    ("resp_per_min", 20.0, 5.0), ("spo2_pct", 96.0, 3.0), ("temp_c", 37.0, 0.7))
#: Horizons (hours) the networks are trained on; any horizon in [0, 72] can be asked.
TRAIN_HORIZONS: tuple[int, ...] = (1, 2, 4, 8, 12, 24, 48, 72)
TSL_CAP_H = 200.0
N_FEATURES = 6 * len(VITALS) + 3 * len(AUX) + 5


@dataclass
class Summaries:
    """Per endpoint, arrays over forecast origins: ``last``, ``mean3``, ``mean12`` (NaN when
    no reading), ``tsl`` (hours since the last reading, capped) and ``count`` (readings)."""

    last: np.ndarray
    mean3: np.ndarray
    mean12: np.ndarray
    tsl: np.ndarray
    count: np.ndarray


def grid_summaries(Y: np.ndarray) -> Summaries:
    """Summaries at every hour of an hourly grid ``Y`` (stays x hours, NaN = no reading),
    using the readings at hours <= t."""
    S, T = Y.shape
    last, m3, m12 = (np.full((S, T), np.nan) for _ in range(3))
    tsl = np.full((S, T), TSL_CAP_H)
    count = np.zeros((S, T))
    hours = np.arange(T)
    for i in range(S):
        idx = np.flatnonzero(np.isfinite(Y[i]))
        if not len(idx):
            continue
        v = Y[i, idx]
        c = np.concatenate([[0.0], np.cumsum(v)])
        pos = np.searchsorted(idx, hours, side="right")
        has = pos > 0
        p = np.maximum(pos, 1)
        last[i] = np.where(has, v[p - 1], np.nan)
        for k, out in ((3, m3), (12, m12)):
            lo = np.maximum(pos - k, 0)
            out[i] = np.where(has, (c[pos] - c[lo]) / np.maximum(pos - lo, 1), np.nan)
        tsl[i] = np.where(has, np.minimum(hours - idx[p - 1], TSL_CAP_H), TSL_CAP_H)
        count[i] = pos
    return Summaries(last, m3, m12, tsl, count)


def features(target: str, h: np.ndarray, mu: dict[str, np.ndarray], sd: np.ndarray,
             summ: dict[str, Summaries], sel: tuple[np.ndarray, np.ndarray],
             t_h: np.ndarray, age: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Feature matrix ``[n, N_FEATURES]`` (float32) for ``target`` at the origins ``sel =
    (stay index, hour index)`` into the summaries; ``mu[e]``, ``sd`` the state-space forecasts
    ``[n]`` at horizon ``h`` [n] hours; ``t_h`` hours since admission, ``age`` years, ``male``
    0/1 (all [n])."""
    ii, tt = sel
    base = mu[target]
    cols = []
    for e in VITALS:
        s = summ.get(e)
        if s is None:
            cols += [np.zeros_like(base)] * 3 + [np.zeros_like(base),
                                                  np.full_like(base, math.log1p(TSL_CAP_H) / 3),
                                                  np.zeros_like(base)]
            continue
        ref = mu[e]
        for arr in (s.last, s.mean3, s.mean12):
            cols.append(np.nan_to_num(arr[ii, tt] - ref) / 10.0)
        cols.append((ref - base) / 10.0 if e != target else base / 100.0 - 1.0)
        cols.append(np.log1p(s.tsl[ii, tt]) / 3.0)
        cols.append(np.log1p(np.minimum(s.count[ii, tt], 200.0)) / 3.0)
    for e, centre, spread in AUX:
        s = summ.get(e)
        if s is None:
            cols += [np.zeros_like(base), np.zeros_like(base),
                     np.full_like(base, math.log1p(TSL_CAP_H) / 3)]
            continue
        v = s.last[ii, tt]
        cols += [np.nan_to_num((v - centre) / spread), np.isfinite(v).astype(float),
                 np.log1p(s.tsl[ii, tt]) / 3.0]
    age = np.where(np.isfinite(age), age, 65.0)
    cols += [sd / 20.0, np.log1p(t_h) / 3.0, (age - 65.0) / 15.0, male.astype(float),
             np.log1p(h) / 3.0]
    return np.stack(cols, axis=1).astype(np.float32)


class ResidualNet(torch.nn.Module):
    """MLP features -> (median correction d, log scale) of one endpoint's next reading."""

    def __init__(self, n_in: int = N_FEATURES, hidden: int = 64) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.GELU(),
            torch.nn.Linear(hidden, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.body(x)
        return out[:, 0] * 10.0, out[:, 1] + 2.0   # d in natural units, log b around e^2


def laplace_nll(d: torch.Tensor, log_b: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
    """Mean Laplace negative log-likelihood of ``resid`` (= y - state-space mean)."""
    return ((resid - d).abs() * torch.exp(-log_b) + log_b).mean()


def train_net(X: np.ndarray, resid: np.ndarray, *, epochs: int = 12, seed: int = 0,
              aux_dropout: float = 0.5, hidden: int = 48,
              val: tuple[np.ndarray, np.ndarray] | None = None, log=None) -> ResidualNet:
    """Fit a ResidualNet on features ``X`` and residuals ``y - mu`` (natural units).

    ``aux_dropout``: fraction of training rows whose other-vital-sign features are blanked,
    so the network also serves patients for whom only BP and HR are charted. ``val``:
    features and residuals of held-out patients; the epoch with the lowest mean absolute
    error there is kept (rows of one patient are strongly correlated, so the network
    overfits after a few epochs)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = ResidualNet(X.shape[1], hidden)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    Xt, rt = torch.tensor(X), torch.tensor(resid, dtype=torch.float32)
    aux = slice(6 * len(VITALS), 6 * len(VITALS) + 3 * len(AUX))
    blank = torch.tensor([0.0, 0.0, math.log1p(TSL_CAP_H) / 3] * len(AUX))
    n = len(rt)
    best, best_state = math.inf, None
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for s in range(0, n, 1024):
            b = perm[s:s + 1024]
            xb = Xt[b].clone()
            drop = torch.rand(len(b), generator=g) < aux_dropout
            xb[drop, aux] = blank
            opt.zero_grad()
            loss = laplace_nll(*net(xb), rt[b])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        net.eval()
        msg = f"epoch {epoch + 1}/{epochs}: Laplace NLL {total / n:.4f}"
        if val is not None:
            d, _ = predict_net(net, val[0])
            mae = float(np.mean(np.abs(val[1] - d)))
            msg += f", held-out MAE {mae:.3f} (state space alone {np.mean(np.abs(val[1])):.3f})"
            if mae < best:
                best = mae
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
        if log:
            log(msg)
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval()


def predict_net(net: ResidualNet, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median correction d, scale b) arrays [n], natural units."""
    with torch.no_grad():
        d, log_b = net(torch.tensor(X))
    return d.numpy().astype(np.float64), np.exp(log_b.numpy()).astype(np.float64)


def net_state(net: ResidualNet) -> dict[str, list]:
    """JSON-able weights (the params file is JSON)."""
    return {k: v.detach().numpy().round(6).tolist() for k, v in net.state_dict().items()}


def net_from_state(state: dict[str, list]) -> ResidualNet:
    hidden = len(state["body.0.bias"])
    net = ResidualNet(len(state["body.0.weight"][0]), hidden)
    net.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
    return net.eval()
