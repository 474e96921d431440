"""The rule checks on readings, without the database: stale readings, SpO2 scale 2, oxygen
from FiO2 or flow, incomplete NEWS2 sets, hysteresis edges, overrides moving the band."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.alerts import conditions, rules
from app.alerts.conditions import Reading
from app.codes import CODES

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
RULES = rules.load(None, set(CODES)).rules


def _latest(hours_ago: float = 1, **values: float) -> dict[str, Reading]:
    return {code: Reading(NOW - timedelta(hours=hours_ago), v) for code, v in values.items()}


@pytest.mark.parametrize(("value", "state"), [
    (89.9, "met"), (90, "unknown"), (94.9, "unknown"), (95, "cleared"), (120, "cleared")])
def test_sbp_low_band_edges(value, state):
    assert conditions.vital(RULES["sbp_low"], _latest(sbp_mmhg=value), NOW, 1).state == state


@pytest.mark.parametrize(("value", "state"), [
    (180.1, "met"), (180, "unknown"), (170.1, "unknown"), (170, "cleared")])
def test_sbp_high_band_edges(value, state):
    assert conditions.vital(RULES["sbp_high"], _latest(sbp_mmhg=value), NOW, 1).state == state


def test_a_stale_reading_neither_raises_nor_clears():
    rule = RULES["sbp_low"]
    assert conditions.vital(rule, _latest(13, sbp_mmhg=70), NOW, 1).state == "unknown"
    assert conditions.vital(rule, _latest(13, sbp_mmhg=130), NOW, 1).state == "unknown"
    assert conditions.vital(rule, _latest(11, sbp_mmhg=70), NOW, 1).state == "met"


def test_spo2_scale_2_has_its_own_thresholds():
    rule = RULES["spo2_low"]
    assert conditions.vital(rule, _latest(spo2_pct=89), NOW, 1).state == "met"
    assert conditions.vital(rule, _latest(spo2_pct=89), NOW, 2).state == "unknown"
    assert conditions.vital(rule, _latest(spo2_pct=87), NOW, 2).state == "met"
    assert conditions.vital(rule, _latest(spo2_pct=90), NOW, 2).state == "cleared"


def test_supplemental_oxygen_from_fio2_or_flow():
    def oxygen(**values):
        return conditions.observation_set(_latest(**values), NOW, 12, 1).supplemental_oxygen

    assert oxygen(on_oxygen=1) is True and oxygen(on_oxygen=0) is False
    assert oxygen(fio2_pct=28) is True and oxygen(fio2_pct=21) is False
    assert oxygen(o2_flow_l_per_min=2) is True and oxygen(o2_flow_l_per_min=0) is False
    assert oxygen(on_oxygen=0, fio2_pct=40) is False  # the recorded yes/no wins
    assert oxygen() is None
    obs = conditions.observation_set(_latest(acvpu=2), NOW, 12, 1)
    assert obs.consciousness == "V"


def test_news2_incomplete_raises_on_a_lower_bound_but_never_clears():
    rule = RULES["news2_medium"]
    high = conditions.observation_set(_latest(sbp_mmhg=85, hr_bpm=135), NOW, 12, 1)  # 3 + 3
    assert conditions.news2_score(rule, high).state == "met"
    low = conditions.observation_set(_latest(sbp_mmhg=120, hr_bpm=70), NOW, 12, 1)
    found = conditions.news2_score(rule, low)
    assert found.state == "unknown" and "incomplete" in found.message
    full = conditions.observation_set(_latest(
        rr_per_min=16, spo2_pct=97, on_oxygen=0, sbp_mmhg=120, hr_bpm=70, acvpu=0,
        temp_c=37), NOW, 12, 1)
    assert conditions.news2_score(rule, full).state == "cleared"


def test_an_override_moves_the_hysteresis_band_unless_clear_is_given():
    rule = RULES["sbp_low"]
    moved = rule.with_override(80, None, None)
    assert (moved.threshold, moved.clear) == (80, 85)
    both = rule.with_override(80, 82, None)
    assert (both.threshold, both.clear) == (80, 82)
    off = rule.with_override(None, None, False)
    assert off.enabled is False and off.threshold == 90
    spo2 = RULES["spo2_low"].with_override(85, None, None)
    assert spo2.threshold_scale2 is None  # the patient's own threshold, on either scale
