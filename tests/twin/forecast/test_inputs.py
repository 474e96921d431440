"""Bad inputs are refused with errors naming the field (no simulation needed)."""

from __future__ import annotations

import pytest

from tests.twin.forecast.helpers import scenario, tiny_forecaster
from twin import ENDPOINTS, Observation, ObservationError
from twin.errors import TwinError
from twin.forecast.observations import validate_observations

GOOD = [Observation(0.0, "sbp_mmhg", 150.0), Observation(4.0, "sbp_mmhg", 148.0)]


@pytest.fixture
def forecaster(tiny_fc):
    return tiny_fc


@pytest.mark.parametrize(
    ("observations", "now_h", "message"),
    [
        ([], 10.0, "at least one observation"),
        ([Observation(1.0, "sbp_kpa", 20.0)], 10.0, "unknown endpoint 'sbp_kpa'"),
        ([Observation(1.0, "sbp_mmhg", 20.0)], 10.0, "check the unit"),  # kPa given as mmHg
        ([Observation(1.0, "angII_pg_per_ml", -3.0)], 10.0, "angII_pg_per_ml must be in"),
        ([Observation(12.0, "sbp_mmhg", 150.0)], 10.0, "in the future"),
        ([Observation(5.0, "sbp_mmhg", 150.0), Observation(2.0, "hr_bpm", 70.0)], 10.0,
         "in time order"),
        ([Observation(-1.0, "sbp_mmhg", 150.0)], 10.0, "time_h: must be a finite number >= 0"),
        ([Observation(1.0, "hr_bpm", float("nan"))], 10.0, "hr_bpm must be in"),
    ],
)
def test_bad_observations_are_refused(observations, now_h, message):
    with pytest.raises(ObservationError, match=message):
        validate_observations(observations, now_h)


def test_error_names_the_offending_observation():
    obs = [*GOOD, Observation(8.0, "dbp_mmhg", 1000.0)]
    with pytest.raises(ObservationError, match=r"observations\[2\]\.value"):
        validate_observations(obs, 10.0)


def test_good_observations_pass():
    assert validate_observations(GOOD, 4.0) == tuple(GOOD)


def test_forecast_refuses_bad_inputs(forecaster):
    s = scenario()
    with pytest.raises(ObservationError):
        forecaster.forecast(s, [], now_h=10.0)
    with pytest.raises(ObservationError, match="future"):
        forecaster.forecast(s, GOOD, now_h=2.0)
    with pytest.raises(TwinError, match="coverage"):
        forecaster.forecast(s, GOOD, now_h=10.0, coverage=1.5)
    with pytest.raises(TwinError, match="horizon_h"):
        forecaster.forecast(s, GOOD, now_h=10.0, horizon_h=500)
    with pytest.raises(TwinError, match="engine"):
        forecaster.forecast(s, GOOD, now_h=10.0, engine="crystal_ball")
    with pytest.raises(TwinError, match="step_h"):
        forecaster.forecast(s, GOOD, now_h=10.0, step_h=0)


def test_forecast_shape_and_interval_order(forecaster):
    f = forecaster.forecast(scenario(), GOOD, now_h=10.0, horizon_h=24, coverage=0.8, step_h=2)
    d = f.to_dict()
    assert d["engine"] == "graph" and d["model_version"] == "test-1" and d["coverage"] == 0.8
    assert list(d["endpoints"]) == list(ENDPOINTS)  # the 11 standard endpoints, in order
    sbp = f.endpoints["sbp_mmhg"]
    assert sbp.unit == "mmHg" and len(sbp.times_h) == 13
    assert sbp.times_h[0] == 10.0 and sbp.times_h[-1] == 34.0
    assert (sbp.lower <= sbp.median).all() and (sbp.median <= sbp.upper).all()
    wide = forecaster.forecast(scenario(), GOOD, now_h=10.0, horizon_h=24, coverage=0.95,
                               step_h=2).endpoints["sbp_mmhg"]
    assert ((wide.upper - wide.lower) >= (sbp.upper - sbp.lower) - 1e-9).all()


def test_horizon_and_coverage_changes_reuse_the_engine_prediction():
    """The engine runs once per (scenario, observations, now); another coverage or horizon
    only re-derives the interval, and the result equals a fresh forecaster's."""
    fc = tiny_forecaster()
    memo = fc._memo
    first = fc.forecast(scenario(), GOOD, now_h=10.0, horizon_h=72, coverage=0.9)
    again = fc.forecast(scenario(), GOOD, now_h=10.0, horizon_h=24, coverage=0.8)
    assert (memo.misses, memo.hits) == (1, 1)
    fresh = tiny_forecaster().forecast(scenario(), GOOD, now_h=10.0, horizon_h=24, coverage=0.8)
    for name, ef in again.endpoints.items():
        assert ef.median == pytest.approx(fresh.endpoints[name].median)
        assert ef.upper == pytest.approx(fresh.endpoints[name].upper)
        assert ef.median == pytest.approx(first.endpoints[name].median[:25])
    fc.forecast(scenario(), [*GOOD, Observation(6.0, "sbp_mmhg", 170.0)], now_h=10.0)
    assert memo.misses == 2  # new data: a new prediction
