"""``stay_features`` on small hand-made grids: no look-ahead, the documented values of the
last-value / hours-since / count / window columns, and missing concepts as NaN."""

from __future__ import annotations

import numpy as np
import pytest

from twin.los.features import CONCEPTS, FEATURES, STATIC, VITALS, stay_features

N = 30
NAN = np.nan
STATIC_VALUES = {"age": 67.0, "sex_male": 1.0, "height": 172.0, "weight": 80.5}


def col(name: str) -> int:
    return FEATURES.index(name)


def _grid(n: int = N) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    hr = 80 + rng.normal(0, 5, n)
    hr[[2, 3, 7]] = NAN
    sbp = np.full(n, NAN)
    sbp[[0, 4, 10]] = [120.0, 110.0, 95.0]
    resp = np.full(n, 18.0)
    o2sat = np.full(n, 96.0)
    temp = np.full(n, NAN)
    temp[1] = 37.2
    crea = np.full(n, NAN)
    crea[[3, 20]] = [1.1, 1.8]
    urine = np.full(n, NAN)
    urine[[0, 1, 5, 6, 12]] = [50.0, 0.0, 30.0, 20.0, 100.0]
    fio2 = np.full(n, 21.0)
    return {"hr": hr, "sbp": sbp, "resp": resp, "o2sat": o2sat, "temp": temp,
            "crea": crea, "urine": urine, "fio2": fio2}


def test_names_unique_and_shape():
    assert len(set(FEATURES)) == len(FEATURES)
    assert FEATURES[0] == "hours_since_admission"
    assert FEATURES[1:1 + len(STATIC)] == STATIC
    x = stay_features(_grid(), STATIC_VALUES)
    assert x.shape == (N, len(FEATURES))
    assert x.dtype == float


@pytest.mark.parametrize("h", [0, 5, 17, N - 1])
def test_no_look_ahead(h):
    """Changing hour h's values leaves the features of rows < h as they were."""
    grid = _grid()
    before = stay_features(grid, STATIC_VALUES)
    changed = {c: v.copy() for c, v in grid.items()}
    for c in ("hr", "sbp", "temp", "crea", "urine", "fio2", "resp"):
        changed[c][h] = 5.0 if c != "fio2" else 80.0
    changed["o2sat"][h] = NAN
    after = stay_features(changed, STATIC_VALUES)
    np.testing.assert_array_equal(after[:h], before[:h])
    assert not np.array_equal(after[h], before[h], equal_nan=True)


def test_row_h_is_features_of_the_truncated_grid():
    """Row h equals the last row of the grid cut after hour h (the service's use)."""
    grid = _grid()
    full = stay_features(grid, STATIC_VALUES)
    for h in (0, 3, 11, 24, N - 1):
        cut = {c: v[:h + 1] for c, v in grid.items()}
        last = stay_features(cut, STATIC_VALUES, rows=slice(h, h + 1))
        assert last.shape == (1, len(FEATURES))
        np.testing.assert_array_equal(last[0], full[h])


def test_hours_since_admission_and_static():
    x = stay_features(_grid(), STATIC_VALUES)
    np.testing.assert_array_equal(x[:, col("hours_since_admission")], np.arange(N))
    for k, v in STATIC_VALUES.items():
        assert np.all(x[:, col(k)] == v)
    y = stay_features(_grid(), {"age": 50.0})
    assert np.all(y[:, col("age")] == 50.0)
    assert np.isnan(y[:, col("weight")]).all() and np.isnan(y[:, col("sex_male")]).all()


def test_last_value_and_hours_since():
    x = stay_features(_grid(), STATIC_VALUES)
    last, age = x[:, col("sbp_last")], x[:, col("sbp_age_h")]
    exp_last = [120.0] * 4 + [110.0] * 6 + [95.0] * (N - 10)
    exp_age = [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, *range(N - 10)]
    np.testing.assert_array_equal(last, exp_last)
    np.testing.assert_array_equal(age, exp_age)
    # before the first measurement: NaN value and NaN hours-since
    t_last, t_age = x[:, col("temp_last")], x[:, col("temp_age_h")]
    assert np.isnan(t_last[0]) and np.isnan(t_age[0])
    np.testing.assert_array_equal(t_last[1:], 37.2)
    np.testing.assert_array_equal(t_age[1:], np.arange(N - 1))
    c_last = x[:, col("crea_last")]
    assert np.isnan(c_last[:3]).all()
    np.testing.assert_array_equal(c_last[3:20], 1.1)
    np.testing.assert_array_equal(c_last[20:], 1.8)
    hr = _grid()["hr"]
    assert x[3, col("hr_last")] == hr[1] and x[3, col("hr_age_h")] == 2


def test_counts_and_windows():
    grid = _grid()
    x = stay_features(grid, STATIC_VALUES)
    # measured hours in the last 24 (current hour included), once 24 hours have passed
    sbp_n = x[:, col("sbp_n24")]
    assert sbp_n[23] == 3
    assert sbp_n[24] == 2  # hour 0 has left the window [1, 24]
    assert sbp_n[28] == 1  # window [5, 28] holds hour 10 only
    assert x[N - 1, col("hr_n24")] == 23 and x[23, col("hr_n24")] == 21
    hr = grid["hr"]
    h = 12
    np.testing.assert_allclose(x[h, col("hr_mean6")], np.nanmean(hr[h - 5:h + 1]))
    np.testing.assert_allclose(x[h, col("hr_mean24")], np.nanmean(hr[:h + 1]))
    np.testing.assert_allclose(x[h, col("hr_max24")], np.nanmax(hr[:h + 1]))
    np.testing.assert_allclose(x[h, col("hr_min24")], np.nanmin(hr[:h + 1]))
    np.testing.assert_allclose(x[h, col("hr_sd24")], np.nanstd(hr[:h + 1]))
    h = N - 1
    np.testing.assert_allclose(x[h, col("hr_mean24")], np.nanmean(hr[h - 23:h + 1]))
    # delta24: last value now minus the last value at or before h - 24
    np.testing.assert_allclose(x[h, col("hr_delta24")], hr[h] - hr[h - 24])
    assert np.isnan(x[:24, col("hr_delta24")]).all()
    assert np.isnan(x[:10, col("sbp_mean6")]).sum() == 0  # sbp measured at hour 0 and 4
    # sbp measured only at 10 before hour 29: no value in hours [24, 29] -> NaN mean6
    assert np.isnan(x[N - 1, col("sbp_mean6")])
    # urine sums over full windows (NaN = no output recorded)
    np.testing.assert_array_equal(x[5:8, col("urine_sum6")], [80, 50, 50])
    np.testing.assert_array_equal(x[12:18, col("urine_sum6")], 100.0)
    assert x[18, col("urine_sum6")] == 0.0
    assert x[23, col("urine_sum24")] == 200.0 and x[N - 1, col("urine_sum24")] == 120.0
    # every concept's measured hours in the last 24
    measured = sum(np.isfinite(v).astype(float) for v in grid.values())
    assert x[N - 1, col("measured24")] == measured[N - 24:].sum()


def test_missing_concept_is_nan_not_an_error():
    grid = {"hr": np.array([80.0, 82.0, NAN, 90.0])}
    x = stay_features(grid, {})
    assert x.shape == (4, len(FEATURES))
    for c in CONCEPTS:
        if c == "hr":
            continue
        assert np.isnan(x[:, col(f"{c}_last")]).all(), c
        assert np.isnan(x[:, col(f"{c}_age_h")]).all(), c
    for c in VITALS[1:]:
        assert np.isnan(x[:, col(f"{c}_mean24")]).all(), c
    np.testing.assert_array_equal(x[:, col("hr_last")], [80, 82, 82, 90])
    np.testing.assert_array_equal(x[:, col("hr_age_h")], [0, 0, 1, 0])
    np.testing.assert_allclose(x[:, col("hr_mean6")], [80, 81, 81, 84])
    assert np.isnan(x[:, col("age")]).all()
    long = stay_features({"hr": np.full(30, 80.0)}, {})
    assert (long[23:, col("sbp_n24")] == 0).all() and (long[23:, col("hr_n24")] == 24).all()
    assert (long[23:, col("urine_sum24")] == 0).all()


def test_news2_partial_of_latest_values():
    """Normal vitals score low; a deteriorating hour raises the partial NEWS2 at that hour
    only from then on, and the 24 h maximum keeps it."""
    n = 10
    grid = {"hr": np.full(n, 75.0), "resp": np.full(n, 16.0), "o2sat": np.full(n, 97.0),
            "sbp": np.full(n, 125.0), "temp": np.full(n, 37.0), "fio2": np.full(n, 21.0)}
    calm = stay_features(grid, {})
    assert (calm[:, col("news2_partial")] == 0).all()
    grid["hr"][6:] = 135.0      # NEWS2 hr >= 131: 3
    grid["resp"][6] = 26.0      # >= 25: 3, back to 16 at hour 7
    x = stay_features(grid, {})
    news = x[:, col("news2_partial")]
    assert (news[:6] == 0).all() and news[6] == 6 and news[7] == 3
    assert x[9, col("news2_max24")] == 6
    assert (x[:, col("news2_missing")] == x[0, col("news2_missing")]).all()
    assert x[0, col("news2_missing")] >= 1  # consciousness is never in the grid


def test_counts_and_sums_from_the_first_hour():
    """Hours before admission count nothing: counts and sums are numbers from hour 0."""
    x = stay_features({"hr": np.full(30, 80.0), "urine": np.full(30, 50.0)}, {})
    col = FEATURES.index
    np.testing.assert_array_equal(x[:3, col("hr_n24")], [1, 2, 3])
    assert x[25, col("hr_n24")] == 24
    np.testing.assert_array_equal(x[:3, col("urine_sum6")], [50, 100, 150])
    assert x[10, col("urine_sum6")] == 300 and x[2, col("urine_sum24")] == 150
    np.testing.assert_array_equal(x[:2, col("measured24")], [2, 4])
