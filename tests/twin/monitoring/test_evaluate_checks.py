"""`python -m twin evaluate-checks`: artefacts injected into stays are found, clean smooth
readings are not flagged, bad input is one error line; (slow) the real cohort's figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import SHARED
from twin.monitoring import evaluate_checks as ec
from twin.realdata.loader import Cohort, Stay


def _stay(sid: int, hours: int = 48) -> Stay:
    t = np.arange(hours, dtype=float)
    wobble = 3 * np.sin(t / 5)
    vals = {"sbp_mmhg": 125 + wobble, "dbp_mmhg": 72 + wobble / 2, "hr_bpm": 80 - wobble}
    return Stay(sid, 60.0, "Female", "test", {k: t.copy() for k in vals}, vals)


def _cohort(n: int = 20) -> Cohort:
    return Cohort("synthetic", [_stay(1000 + i) for i in range(n)], {}, {}, {})


def test_swaps_and_damped_traces_are_always_flagged_and_smooth_data_never():
    r = ec.evaluate(ec.inject(_cohort(), rate=0.1, seed=1))
    assert r["injected"]["sbp_dbp_swap"] > 0 and r["recall"]["sbp_dbp_swap"] == 1.0
    assert r["recall"]["damped_trace"] == 1.0
    assert r["recall"]["hr_doubled"] == 1.0          # 80 -> 160 within an hour
    assert r["false_flags_per_1000_clean"] == 0.0
    assert r["precision"] == 1.0


def test_injection_is_seeded_and_counts_every_artefact():
    a = ec.evaluate(ec.inject(_cohort(), rate=0.1, seed=7))
    b = ec.evaluate(ec.inject(_cohort(), rate=0.1, seed=7))
    assert a == b
    points = sum(len(s.times["sbp_mmhg"]) - 1 for s in _cohort().stays)
    assert a["readings"] == points
    assert 0.05 * points < sum(a["injected"].values()) < 0.15 * points


def test_without_artefacts_nothing_is_recalled():
    r = ec.evaluate(ec.inject(_cohort(), rate=1e-9, seed=1))
    assert sum(r["injected"].values()) == 0 and r["precision"] is None


def test_cli_bad_directory_is_one_error_line(tmp_path, capsys):
    assert ec.main(["--data", str(tmp_path), "--forecast-stays", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dyn.parquet" in err[0]


@pytest.mark.slow
def test_real_cohort_figures(tmp_path):
    out = tmp_path / "checks.json"
    assert ec.main(["--data", str(SHARED / "realdata/eicu_demo/los"), "--forecast-stays", "10",
                    "--json", str(out)]) == 0
    r = json.loads(out.read_text())["results"]
    phys = r["physiology"]
    assert phys["recall"]["sbp_dbp_swap"] == 1.0 and phys["recall"]["damped_trace"] == 1.0
    assert phys["recall_all"] >= 0.8 and phys["false_flags_per_1000_clean"] < 30
    assert r["with_forecast_99"]["recall_all"] >= r["physiology_subset"]["recall_all"]
