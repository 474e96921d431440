"""Measurement checks (twin.monitoring.checks): each rule at its threshold, flags are "check"
flags naming the values, consistent readings raise none."""

from __future__ import annotations

import pytest

from twin.monitoring.checks import JUMP, MIN_PULSE_PRESSURE_MMHG, check_reading

EPS = 0.1


def rules(flags) -> set[str]:
    return {f.rule for f in flags}


def test_consistent_reading_has_no_flag():
    prev = [(0.0, 118.0), (1.0, 122.0), (2.0, 120.0)]
    flags = check_reading("sbp_mmhg", 124.0, others={"dbp_mmhg": 78.0, "map_mmhg": 93.0},
                          previous=prev, interval_99=(90.0, 150.0), time_h=3.0)
    assert flags == []


@pytest.mark.parametrize(("dbp", "rule"), [(120.0 + EPS, "dbp_not_below_sbp"),
                                           (120.0, "dbp_not_below_sbp"),
                                           (120.0 - EPS, "narrow_pulse_pressure")])
def test_dbp_not_below_sbp(dbp, rule):
    flags = check_reading("dbp_mmhg", dbp, others={"sbp_mmhg": 120.0})
    assert rules(flags) == {rule}
    f = flags[0]
    assert f.kind == "check" and f.endpoint == "dbp_mmhg" and "check this reading" in f.message
    assert f.values["sbp_mmhg"] == 120.0 and f.values["dbp_mmhg"] == dbp


@pytest.mark.parametrize(("pp", "fires"), [(MIN_PULSE_PRESSURE_MMHG - EPS, True),
                                           (MIN_PULSE_PRESSURE_MMHG, False),
                                           (MIN_PULSE_PRESSURE_MMHG + EPS, False)])
def test_narrow_pulse_pressure(pp, fires):
    flags = check_reading("sbp_mmhg", 80.0 + pp, others={"dbp_mmhg": 80.0})
    assert ("narrow_pulse_pressure" in rules(flags)) is fires
    if fires:
        assert flags[0].as_dict()["values"]["pulse_pressure_mmhg"] == pytest.approx(pp)


def test_map_outside_sbp_dbp():
    flags = check_reading("map_mmhg", 130.0, others={"sbp_mmhg": 120.0, "dbp_mmhg": 70.0})
    assert rules(flags) == {"map_outside_sbp_dbp"}
    assert check_reading("map_mmhg", 90.0, others={"sbp_mmhg": 120.0, "dbp_mmhg": 70.0}) == []


def test_hr_has_no_pressure_rules():
    assert check_reading("hr_bpm", 80.0, others={"sbp_mmhg": 80.0, "dbp_mmhg": 90.0}) == []


@pytest.mark.parametrize("endpoint", ["sbp_mmhg", "hr_bpm", "temperature_c", "spo2_pct"])
@pytest.mark.parametrize(("dt", "sign"), [(0.5, 1), (1.0, -1), (4.0, 1)])
def test_jump_threshold_per_hour(endpoint, dt, sign):
    limit = JUMP[endpoint]
    ref = {"sbp_mmhg": 120.0, "hr_bpm": 80.0, "temperature_c": 37.0, "spo2_pct": 70.0}[endpoint]
    prev = [(10.0 - dt - 2.0, ref), (10.0 - dt - 1.0, ref), (10.0 - dt, ref)]
    allowed = limit.allowed(dt)
    eps = 0.01
    over = check_reading(endpoint, ref + sign * (allowed + eps), previous=prev, time_h=10.0)
    at = check_reading(endpoint, ref + sign * allowed, previous=prev, time_h=10.0)
    assert rules(over) == {"implausible_jump"} and at == []
    f = over[0]
    assert f.values["dt_h"] == dt and f.values["allowed"] == pytest.approx(allowed)
    assert ("above" if sign > 0 else "below") in f.message


def test_jump_limit_grows_with_time_and_is_capped():
    lim = JUMP["sbp_mmhg"]
    assert lim.allowed(0.0) == lim.base < lim.allowed(1.0) < lim.allowed(2.0) <= lim.cap
    assert lim.allowed(1000.0) == lim.cap


def test_jump_reference_is_robust_to_one_earlier_artefact():
    # one spike among the previous readings: the median reference ignores it
    prev = [(1.0, 120.0), (2.0, 200.0), (3.0, 122.0)]
    assert check_reading("sbp_mmhg", 118.0, previous=prev, time_h=4.0) == []


def test_hr_doubled_is_flagged():
    prev = [(1.0, 78.0), (2.0, 80.0), (3.0, 79.0)]
    assert rules(check_reading("hr_bpm", 160.0, previous=prev, time_h=4.0)) == {
        "implausible_jump"}


def test_jump_needs_recent_history():
    assert check_reading("sbp_mmhg", 60.0, previous=[(0.0, 140.0)], time_h=10.0) == []
    assert check_reading("sbp_mmhg", 60.0, previous=[], time_h=10.0) == []


def test_future_previous_readings_are_ignored():
    assert check_reading("sbp_mmhg", 60.0, previous=[(11.0, 140.0)], time_h=10.0) == []


@pytest.mark.parametrize(("value", "fires"), [(89.9, True), (90.0, False), (150.0, False),
                                              (150.1, True)])
def test_outside_99_interval(value, fires):
    flags = check_reading("sbp_mmhg", value, interval_99=(90.0, 150.0))
    assert ("outside_99" in rules(flags)) is fires
    if fires:
        assert "99 %" in flags[0].message and flags[0].values["lower"] == 90.0


def test_swapped_entry_gets_two_views():
    # SBP/DBP transposed: both readings of the set are flagged
    assert "dbp_not_below_sbp" in rules(check_reading("sbp_mmhg", 70.0,
                                                      others={"dbp_mmhg": 120.0}))
    assert "dbp_not_below_sbp" in rules(check_reading("dbp_mmhg", 120.0,
                                                      others={"sbp_mmhg": 70.0}))


def test_bad_value():
    with pytest.raises(ValueError, match="sbp_mmhg"):
        check_reading("sbp_mmhg", float("nan"))
