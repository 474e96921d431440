"""Engine accuracy, batching, gradients and speed sanity of the batched RODAS4 solver."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scripts.bench_simulate import COMPARED, endpoints_np, patients, rel_err, scipy_solve
from twin import Regimen, Scenario, simulate
from twin.models import ClinicalModel
from twin.parameters import load_parameters


def test_engine_matches_tight_radau_within_1e4():
    scen, ov = patients(3, seed=1)
    times = np.arange(0.0, 49.0, 0.5)
    res = simulate(scen, times, overrides=ov)
    model = ClinicalModel(load_parameters("clinical"), scen, float(times[-1]), ov)
    for i in range(3):
        y, _ = scipy_solve(model, i, times, "Radau", 1e-10)
        truth = endpoints_np(model, times, y, i)
        ours = {k: res.endpoints[k][i].detach().numpy() for k in COMPARED}
        assert rel_err(ours, truth) < 1e-4


@pytest.mark.slow
def test_batch_equals_loop():
    scen = [Scenario(regimen=Regimen(dose_mg=10.0, interval_h=12.0)),
            Scenario(renal_function="impaired", glucose="diabetic",
                     regimen=Regimen(drug="lisinopril", dose_mg=20.0)),
            Scenario(infected=True, infection_onset_h=10.0, glucose=9.0,
                     baseline={"angII_pg_per_ml": 25.0})]
    times = np.linspace(0.0, 30.0, 61)
    batch = simulate(scen, times, rtol=1e-7)
    for i, s in enumerate(scen):
        alone = simulate(s, times, rtol=1e-7)
        for k in batch.endpoints:
            a, b = batch.endpoints[k][i], alone.endpoints[k][0]
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-9), k


@pytest.mark.slow
def test_gradient_matches_finite_differences():
    scen = Scenario(regimen=Regimen(dose_mg=5.0, n_doses=1))
    times = [0.0, 4.0, 8.0]

    def out(c50: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        r = simulate(scen, times, overrides={"ace_c50": c50, "renin_feedback": fb}, rtol=1e-8)
        return r.endpoints["angII_pg_per_ml"][0, 2] + r.endpoints["map_mmhg"][0, 1]

    c50 = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    fb = torch.tensor([0.8], dtype=torch.float64, requires_grad=True)
    out(c50, fb).backward()
    h = 1e-3
    for var, grad in ((c50, c50.grad), (fb, fb.grad)):
        with torch.no_grad():
            base = var.clone()
            var.copy_(base + h)
            up = out(c50.detach(), fb.detach())
            var.copy_(base - h)
            down = out(c50.detach(), fb.detach())
            var.copy_(base)
        fd = float((up - down) / (2 * h))
        assert float(grad[0]) == pytest.approx(fd, rel=1e-4, abs=1e-8)
        assert abs(fd) > 1e-6


def test_gradient_wrt_initial_state_flows_through_solver():
    from twin.solver import integrate

    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([2000.0, 3.0], dtype=torch.float64)

    def rhs(t, y):
        return torch.stack([-k[0] * y[..., 0] + k[1] * y[..., 1], k[0] * y[..., 0]
                            - 2 * k[1] * y[..., 1]], -1)

    y = integrate(rhs, y0, np.array([0.0, 1.0]), rtol=1e-10)
    y[0, 1, 1].backward()
    lam = np.linalg.eigvals(np.array([[-2000.0, 3.0], [2000.0, -6.0]]))
    assert np.all(lam < 0)
    from scipy.linalg import expm
    exact = expm(np.array([[-2000.0, 3.0], [2000.0, -6.0]]))
    assert float(y[0, 1, 1].detach()) == pytest.approx(exact[1, 0], rel=1e-6)
    assert float(y0.grad[0, 0]) == pytest.approx(exact[1, 0], rel=1e-6)
