"""``python -m twin evaluate`` writes the JSON layout the issue specifies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.twin.forecast.helpers import tiny_forecaster
from twin import ENDPOINTS
from twin.forecast.cli import parser


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin", "evaluate", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_evaluate_writes_the_specified_json(tmp_path):
    model = tmp_path / "model"
    tiny_forecaster(seed=2).save(str(model))
    out = tmp_path / "eval.json"
    proc = _run("--seed", "31", "--patients", "2", "--horizon-h", "24", "--json", str(out),
                "--model", str(model))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"world", "target", "default_engine", "results", "baselines"}
    assert (data["world"], data["target"]) == ("as-built", "trajectory")
    assert data["default_engine"] == "graph"
    assert set(data["results"]) == {"persistence", "graph", "published_gat"}
    for engine, per_endpoint in data["results"].items():
        assert list(per_endpoint) == list(ENDPOINTS), engine
        for horizons in per_endpoint.values():
            assert list(horizons) == ["6", "24"]  # 48 and 72 lie beyond --horizon-h 24
            for m in horizons.values():
                assert set(m) == {"n", "mae", "rmse", "coverage", "mean_width"}
                assert 0.0 <= m["coverage"] <= 1.0 and m["rmse"] >= m["mae"] >= 0.0
    assert set(data["baselines"]) == {"persistence", "mean3", "mean12"}
    for per_endpoint in data["baselines"].values():
        assert list(per_endpoint) == list(ENDPOINTS)
        assert set(per_endpoint["sbp_mmhg"]["24"]) == {"n", "mae", "rmse"}


@pytest.mark.slow
def test_evaluate_world_flag_writes_the_world(tmp_path):
    model = tmp_path / "model"
    tiny_forecaster(seed=2).save(str(model))
    out = tmp_path / "eval.json"
    proc = _run("--seed", "31", "--patients", "1", "--horizon-h", "6", "--world", "rhythm",
                "--json", str(out), "--model", str(model))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert (data["world"], data["target"]) == ("rhythm", "readings")
    assert "world rhythm" in proc.stderr


def test_evaluate_world_argument_parses():
    args = parser().parse_args(["--seed", "1", "--world", "missed-doses", "--target",
                                "trajectory"])
    assert (args.world, args.target) == ("missed-doses", "trajectory")
    assert parser().parse_args(["--seed", "1"]).world == "as-built"
    assert "variability" in parser().format_help()


def test_evaluate_bad_arguments_exit_2(tmp_path):
    assert _run("--seed", "1", "--patients", "0").returncode == 2
    assert _run("--seed", "1", "--horizon-h", "500").returncode == 2
    assert _run("--patients", "3").returncode == 2  # --seed is required
    proc = _run("--seed", "1", "--world", "storm")
    assert proc.returncode == 2
    assert "--world: invalid choice: 'storm'" in proc.stderr and "missed-doses" in proc.stderr
    assert _run("--seed", "1", "--target", "cuff").returncode == 2


def test_evaluate_refuses_a_missing_bundle(tmp_path):
    proc = _run("--seed", "1", "--patients", "1", "--model", str(tmp_path / "absent"))
    assert proc.returncode == 1
    assert "manifest.json is missing" in proc.stderr
