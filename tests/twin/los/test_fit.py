"""Fitting: the finite-sample conformal quantile, and a small ``fit-los`` on real stays whose
corrected interval covers >= 80 % of the calibration rows in every band (CQR's guarantee
on the data it was calibrated on)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.twin.los.helpers import stay_ids, write_subset
from twin.los.data import design, load_los
from twin.los.features import FEATURES
from twin.los.fit import BANDS_H, MEDIAN_LOG, VERSION, conformal_quantile, cqr_corrections
from twin.los.model import LosModel, load_model, save_model

pytest.importorskip("lightgbm")


def test_conformal_quantile_finite_sample():
    s = np.arange(1.0, 11.0)
    assert conformal_quantile(s, 0.8) == 9.0  # ceil(11 * 0.8) = 9th smallest
    assert conformal_quantile(s[::-1].copy(), 0.8) == 9.0  # order does not matter
    assert conformal_quantile(s, 0.5) == 6.0  # ceil(5.5) = 6
    assert conformal_quantile(s, 0.95) == 10.0  # ceil(10.45) = 11 > n: the maximum
    assert conformal_quantile(np.array([]), 0.8) == 0.0
    assert conformal_quantile(np.array([-3.0]), 0.8) == -3.0  # negative: narrows
    assert conformal_quantile(np.array([2.0, -1.0]), 0.5) == 2.0  # ceil(1.5) = 2


@pytest.mark.parametrize("n", [1, 4, 19, 50, 333])
def test_conformal_quantile_covers(n):
    rng = np.random.default_rng(n)
    s = rng.normal(size=n)
    q = conformal_quantile(s, 0.8)
    assert (s <= q).mean() >= 0.8 or q == s.max()
    k = min(n, math.ceil((n + 1) * 0.8))
    assert q == np.sort(s)[k - 1]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """``fit-los --trees 40`` (i.e. fit_los) on 150 train and 60 calibration stays.

    Run as a subprocess with passive OpenMP waiting: in this process torch's libgomp is
    already loaded with spinning threads, and LightGBM's two threads then crawl (30-80 s
    instead of ~2 s) whenever another process holds a core."""
    tmp = tmp_path_factory.mktemp("los")
    d = write_subset(tmp / "data", stay_ids({"train": 150, "calibration": 60}))
    out = tmp / "model.json.gz"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([sys.executable, "-m", "twin", "fit-los", "--data", str(d),
                           "--out", str(out), "--trees", "40"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    stays = load_los(d)
    train = design([s for s in stays if s.split == "train"])
    cal = design([s for s in stays if s.split == "calibration"])
    return load_model(out), train, cal, proc.stderr.splitlines()


def test_small_fit_structure(small):
    model, train, cal, lines = small
    assert len({int(s) for s in train.stay}) == 150 and len({int(s) for s in cal.stay}) == 60
    assert model.version == VERSION and model.features == FEATURES
    assert model.bands_h == BANDS_H and model.median_log == MEDIAN_LOG
    # LightGBM stops early when no leaf can be split any more: at most n_trees trees
    for ens in (model.lower, model.upper, *model.median):
        assert 30 <= len(ens.roots) <= 40
    assert model.trained_on["stays"] == {"train": 150, "calibration": 60}
    assert model.trained_on["rows"] == {"train": len(train.y), "calibration": len(cal.y)}
    assert model.trained_on["params"]["n_trees"] == 40
    assert any("conformal corrections" in line for line in lines)
    assert sum("fitting" in line for line in lines) == 4


def test_small_fit_covers_calibration_rows_per_band(small):
    model, _, cal, _ = small
    med, lo, hi = model.predict(cal.x)
    assert (lo <= med).all() and (med <= hi).all()
    assert (lo >= 0).all() and (hi <= model.cap_h).all()
    band = model.band(cal.hour)
    inside = (cal.y >= lo) & (cal.y <= hi)
    checked = 0
    for b in range(len(model.bands_h)):
        m = band == b
        if m.any():
            checked += 1
            assert inside[m].mean() >= 0.8, (b, int(m.sum()), inside[m].mean())
    assert checked >= 3


def test_corrections_are_the_cqr_quantiles(small):
    model, _, cal, _ = small
    assert model.correction_h == cqr_corrections(model, cal, 0.8)
    lo, _, hi = model.raw(cal.x)
    scores = np.maximum(lo - cal.y, cal.y - hi)
    band = model.band(cal.hour)
    b0 = scores[band == 0]
    assert model.correction_h[0] == conformal_quantile(b0, 0.8)
    empty = [b for b in range(len(BANDS_H)) if not (band == b).any()]
    for b in empty:
        assert model.correction_h[b] == 0.0


def test_small_fit_is_better_than_a_constant_on_its_data(small):
    model, train, _, _ = small
    med, _, _ = model.predict(train.x)
    assert np.abs(train.y - med).mean() < np.abs(train.y - np.median(train.y)).mean()


def test_small_fit_saves_and_loads(small, tmp_path):
    model = small[0]
    save_model(model, tmp_path / "m.json.gz")
    back = load_model(tmp_path / "m.json.gz")
    assert isinstance(back, LosModel)
    x = small[2].x[:200]
    for a, b in zip(back.predict(x), model.predict(x), strict=True):
        np.testing.assert_array_equal(a, b)
