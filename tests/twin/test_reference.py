"""The `reference` set reproduces every published Barbiero et al. 2020 trajectory."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from twin import Regimen, Scenario, simulate

GRID_H = 0.048 * np.arange(2500)


def _cases(shared_dir):
    doc = json.loads((shared_dir / "reference" / "barbiero2020" / "scenarios.json").read_text())
    return doc["scenarios"]


@pytest.fixture(scope="module")
def reference_runs(shared_dir):
    """(file, our frame, published frame) for the 7 published scenarios, one batched run."""
    cases = _cases(shared_dir)
    scenarios = [Scenario(age_years=c["age_years"], renal_function=c["renal_function"],
                          glucose=c["glucose_mmol_per_l"], infected=c["infected"],
                          regimen=Regimen(dose_mg=c["dose_mg"],
                                          interval_h=24.0 / c["doses_per_day"]))
                 for c in cases]
    result = simulate(scenarios, GRID_H, parameters="reference")
    base = shared_dir / "reference" / "barbiero2020"
    return [(c["file"], result.to_reference_frame(i), pd.read_csv(base / c["file"]))
            for i, c in enumerate(cases)]


def test_all_seven_files_are_covered(reference_runs):
    assert len(reference_runs) == 7


@pytest.mark.parametrize("k", range(7))
def test_every_common_column_within_1e2_of_range(reference_runs, k):
    name, ours, published = reference_runs[k]
    common = [c for c in published.columns if c in ours.columns]
    assert len(common) == len(published.columns), f"{name}: missing columns"
    assert len(ours) == len(published)
    for col in common:
        span = float(published[col].max() - published[col].min())
        diff = float(np.max(np.abs(ours[col].to_numpy() - published[col].to_numpy())))
        scale = span if span > 0 else max(1.0, float(np.abs(published[col]).max()))
        assert diff / scale < 1e-2, f"{name} {col}: {diff / scale:.2e}"


def test_reference_reproduces_the_negative_renin_bug(reference_runs):
    _name, ours, published = next(r for r in reference_runs if "drug-0_glu-6" in r[0])
    assert published["Renin"].min() < 0
    assert ours["Renin"].min() < 0
