"""``python -m twin evaluate-los`` on a small real subset writes the specified JSON, and a
bad ``--data`` fails with a clear one-line message (no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.twin.los.helpers import stay_ids, write_subset

KEYS = ("24", "48", "72", "all")
SCORE_KEYS = {"n", "mae_h", "medae_h", "coverage_80"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin", "evaluate-los", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    ids = stay_ids({"train": 72, "calibration": 24, "test": 24})
    return write_subset(tmp_path_factory.mktemp("los120"), ids), ids


def _check_results(results: dict) -> None:
    for name, res in results.items():
        assert list(res) == list(KEYS), name
        for key in KEYS:
            r = res[key]
            assert set(r) == SCORE_KEYS, (name, key)
            assert isinstance(r["n"], int) and r["n"] > 0, (name, key)
            assert r["mae_h"] >= 0 and r["medae_h"] >= 0
            assert 0.0 <= r["coverage_80"] <= 1.0
        assert res["all"]["n"] > res["24"]["n"]
    for key in KEYS:  # every predictor is scored on the same rows
        assert len({res[key]["n"] for res in results.values()}) == 1


@pytest.mark.slow  # ~11 s: fits the random forest
def test_evaluate_los_writes_the_json(subset, tmp_path):
    data_dir, ids = subset
    out = tmp_path / "eval.json"
    proc = _run("--data", str(data_dir), "--json", str(out), "--all-stays")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"default", "random_forest", "median"}
    _check_results(data["results"])
    assert data["split"] == "all" and data["stays"] == len(ids)
    assert data["model_version"] == "los-1"
    assert data["data"] == str(data_dir)
    assert "random-forest" in proc.stderr
    assert "default" in proc.stdout and "ratio-to-median" in proc.stdout


def test_evaluate_los_test_split_no_forest(subset, tmp_path):
    data_dir, _ = subset
    out = tmp_path / "eval.json"
    proc = _run("--data", str(data_dir), "--json", str(out), "--no-forest")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"default", "median"}
    _check_results(data["results"])
    assert data["split"] == "test" and data["stays"] == 24
    assert "random-forest" not in proc.stderr


@pytest.mark.parametrize("kind", ["file", "absent"])
def test_non_directory_data_fails_cleanly(tmp_path, kind):
    target = tmp_path / "not_a_dir.parquet"
    if kind == "file":
        target.write_text("x")
    out = tmp_path / "eval.json"
    proc = _run("--data", str(target), "--json", str(out), "--no-forest")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "not a directory" in proc.stderr and str(target) in proc.stderr
    assert "evaluate-los" in proc.stderr
    assert not out.exists()


def test_missing_model_fails_cleanly(subset, tmp_path):
    data_dir, _ = subset
    proc = _run("--data", str(data_dir), "--model", str(tmp_path / "absent.json.gz"),
                "--no-forest")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "BundleError" in proc.stderr and "no such file" in proc.stderr


def test_missing_parquet_fails_cleanly(tmp_path):
    d = tmp_path / "empty_los"
    d.mkdir()
    proc = _run("--data", str(d), "--no-forest")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "parquet" in proc.stderr and "missing file" in proc.stderr
