"""Split conformal tables: finite-sample rank, coverage, adaptive (normalised) scores."""

from __future__ import annotations

import numpy as np
import pytest

from twin.errors import TwinError
from twin.forecast.conformal import ConformalTable

LEADS = np.array([0.0, 24.0, 72.0])


def _draw(rng, n):
    scale = np.exp(rng.normal(0, 0.7, size=(n, 2, 3)))  # patient-specific difficulty
    return rng.normal(size=(n, 2, 3)) * scale, scale


@pytest.mark.parametrize("normalised", [False, True])
@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.9, 0.95])
def test_marginal_coverage(normalised, coverage):
    rng = np.random.default_rng(0)
    r_cal, s_cal = _draw(rng, 2000)
    r_test, s_test = _draw(rng, 20000)
    table = ConformalTable.fit(LEADS, r_cal, s_cal if normalised else None)
    half = table.half_width(LEADS, coverage)[None] * (s_test if normalised else 1.0)
    cov = np.mean(np.abs(r_test) <= half)
    assert abs(cov - coverage) < 0.02


def test_adaptive_intervals_are_narrower_when_the_spread_is_informative():
    rng = np.random.default_rng(1)
    r_cal, s_cal = _draw(rng, 2000)
    _, s_test = _draw(rng, 5000)
    plain = ConformalTable.fit(LEADS, r_cal).half_width(LEADS, 0.9)[None]
    adaptive = ConformalTable.fit(LEADS, r_cal, s_cal).half_width(LEADS, 0.9)[None] * s_test
    assert adaptive.mean() < 0.9 * np.broadcast_to(plain, adaptive.shape).mean()


def test_finite_sample_rank_and_interpolation():
    r = np.arange(1.0, 10.0)[:, None, None] * np.ones((9, 1, 3))  # 9 scores 1..9
    table = ConformalTable.fit(LEADS, r)
    assert table.quantile(0.9)[0, 0] == 9.0  # ceil(10 * 0.9) = 9th smallest
    assert table.quantile(0.5)[0, 0] == 5.0  # ceil(10 * 0.5) = 5th
    t2 = ConformalTable.fit(LEADS, r * np.array([1.0, 2.0, 3.0]))
    assert t2.half_width(np.array([12.0]), 0.5)[0, 0] == pytest.approx(7.5)  # 5 -> 10 at 24 h
    with pytest.raises(TwinError, match="coverage"):
        table.quantile(0.999)


def test_arrays_round_trip_keeps_the_normalised_flag():
    rng = np.random.default_rng(2)
    r, s = _draw(rng, 50)
    table = ConformalTable.fit(LEADS, r, s)
    back = ConformalTable.from_arrays(table.to_arrays())
    assert back.normalised.all() and np.array_equal(back.scores, table.scores)
    old = {**table.to_arrays(), "normalised": np.asarray(1)}  # an older bundle's flag
    assert ConformalTable.from_arrays(old).normalised.tolist() == [True, True]


def test_auto_normalises_only_where_the_spread_is_informative():
    """Endpoint 0's residuals scale with the engine's spread, endpoint 1's do not: "auto"
    divides only endpoint 0's, and coverage holds on new cases either way."""
    rng = np.random.default_rng(3)

    def draw(n):
        r, s = _draw(rng, n)
        r[:, 1] = rng.normal(size=(n, 3))  # endpoint 1: the same difficulty for everyone
        s[:, 1] = np.exp(rng.normal(0, 0.7, size=(n, 3)))  # and a spread that is noise
        return r, s

    r_cal, s_cal = draw(2000)
    table = ConformalTable.fit(LEADS, r_cal, s_cal, normalise="auto")
    assert table.normalised.tolist() == [True, False]
    r_new, s_new = draw(20000)
    half = table.interval_half_width(LEADS, 0.9, s_new)
    cov = np.mean(np.abs(r_new) <= half, axis=(0, 2))
    assert np.abs(cov - 0.9).max() < 0.02
    with pytest.raises(ValueError, match="spread"):
        table.interval_half_width(LEADS, 0.9, None)
    with pytest.raises(ValueError, match="normalise"):
        ConformalTable.fit(LEADS, r_cal, s_cal, normalise="sometimes")
