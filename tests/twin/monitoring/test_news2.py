"""NEWS2 against the RCP 2017 chart: every band edge, both SpO2 scales, the triggers."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from twin.errors import ObservationError
from twin.monitoring import news2
from twin.monitoring.news2 import IncompleteObservationSet, ObservationSet

CHART = Path(__file__).with_name("news2_chart.csv")
#: a set scoring 0 everywhere
NORMAL = ObservationSet(respiratory_rate_per_min=16, spo2_pct=97, spo2_scale=1,
                        supplemental_oxygen=False, sbp_mmhg=120, hr_bpm=70,
                        consciousness="A", temperature_c=37.0)


def _chart_rows() -> list[dict[str, str]]:
    lines = [ln for ln in CHART.read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def _with(row: dict[str, str]) -> ObservationSet:
    o2 = {"air": False, "oxygen": True, "": False}[row["air_or_oxygen"]]
    param = row["parameter"]
    if param == "supplemental_oxygen":
        value: object = row["value"] == "1"
    elif param == "consciousness":
        value = row["value"]
    else:
        value = float(row["value"])
    fields: dict[str, object] = {"spo2_scale": int(row["spo2_scale"]),
                                 "supplemental_oxygen": o2, param: value}
    return replace(NORMAL, **fields)


@pytest.mark.parametrize("row", _chart_rows(),
                         ids=lambda r: f"{r['parameter']}={r['value']}/s{r['spo2_scale']}"
                                       f"{r['air_or_oxygen']}")
def test_every_band_edge_matches_the_chart(row: dict[str, str]) -> None:
    pts = news2.points(_with(row))
    assert pts[row["parameter"]] == int(row["points"])


def test_chart_table_covers_every_parameter_and_both_scales() -> None:
    rows = _chart_rows()
    assert {r["parameter"] for r in rows} == set(news2.PARAMETERS)
    assert {r["spo2_scale"] for r in rows if r["parameter"] == "spo2_pct"} == {"1", "2"}


@pytest.mark.parametrize(("t", "pts"), [(35.04, 3), (35.06, 1), (38.04, 0), (38.06, 1)])
def test_temperature_is_rounded_to_the_charts_one_decimal(t: float, pts: int) -> None:
    assert news2.points(replace(NORMAL, temperature_c=t))["temperature_c"] == pts


def test_normal_set_is_low_risk_with_twelve_hourly_monitoring() -> None:
    r = news2.score(NORMAL)
    assert (r.score, r.risk, r.single_parameter_3) == (0, "low", False)
    assert r.monitoring_interval_h == 12
    assert r.clinical_response.startswith("Continue routine")


def test_score_one_to_four_is_low_risk_four_hourly() -> None:
    r = news2.score(replace(NORMAL, hr_bpm=95, temperature_c=38.5))  # 1 + 1
    assert (r.score, r.risk, r.monitoring_interval_h) == (2, "low", 4)


def test_single_parameter_3_is_low_medium_hourly() -> None:
    r = news2.score(replace(NORMAL, consciousness="C"))
    assert (r.score, r.risk, r.single_parameter_3, r.monitoring_interval_h) == \
        (3, "low-medium", True, 1)


def test_five_is_medium_and_seven_is_high_continuous() -> None:
    medium = news2.score(replace(NORMAL, supplemental_oxygen=True, hr_bpm=115, spo2_pct=95))
    assert (medium.score, medium.risk, medium.monitoring_interval_h) == (5, "medium", 1)
    high = news2.score(replace(NORMAL, sbp_mmhg=88, hr_bpm=124, respiratory_rate_per_min=22))
    assert (high.score, high.risk, high.monitoring_interval_h) == (7, "high", 0)
    assert "critical-care" in high.clinical_response


def test_a_red_score_inside_a_medium_total_stays_medium() -> None:
    r = news2.score(replace(NORMAL, sbp_mmhg=85, hr_bpm=115))  # 3 + 2
    assert (r.score, r.risk, r.single_parameter_3) == (5, "medium", True)


def test_supplemental_oxygen_adds_two() -> None:
    assert news2.score(replace(NORMAL, supplemental_oxygen=True)).score == 2


def test_scale_2_on_oxygen_scores_high_saturation() -> None:
    on_o2 = replace(NORMAL, spo2_scale=2, supplemental_oxygen=True, spo2_pct=98)
    assert news2.score(on_o2).components["spo2_pct"] == 3
    assert news2.score(replace(on_o2, supplemental_oxygen=False)).components["spo2_pct"] == 0


def test_missing_parameters_are_named_and_never_scored() -> None:
    partial = replace(NORMAL, respiratory_rate_per_min=None, consciousness=None)
    with pytest.raises(IncompleteObservationSet) as exc:
        news2.score(partial)
    assert exc.value.missing == ("respiratory_rate_per_min", "consciousness")
    total, pts, missing = news2.partial_score(partial)
    assert total == 0 and "respiratory_rate_per_min" not in pts
    assert missing == ("respiratory_rate_per_min", "consciousness")


def test_scale_2_saturation_needs_the_oxygen_status() -> None:
    obs = replace(NORMAL, spo2_scale=2, spo2_pct=95, supplemental_oxygen=None)
    _, _, missing = news2.partial_score(obs)
    assert missing == ("spo2_pct", "supplemental_oxygen")


@pytest.mark.parametrize(("field", "value"), [("spo2_scale", 3), ("consciousness", "X"),
                                              ("hr_bpm", float("nan")), ("sbp_mmhg", -1)])
def test_impossible_inputs_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ObservationError) as exc:
        news2.score(replace(NORMAL, **{field: value}))
    assert exc.value.field == field


def test_as_dict_has_the_api_keys() -> None:
    assert set(news2.score(NORMAL).as_dict()) == {
        "score", "components", "risk", "single_parameter_3", "clinical_response",
        "monitoring_interval_h"}
