"""The public API contract (INTERFACE.md): names, shapes, frames, waveform, input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import twin
from twin import ENDPOINTS, PATIENT_PARAMETERS, Regimen, Scenario, simulate
from twin.errors import TwinError

STANDARD = ["angI_pg_per_ml", "angII_pg_per_ml", "renin_pg_per_ml", "pra_ng_per_ml_per_h",
            "ang17_pg_per_ml", "diacid_ng_per_ml", "ace_inhibition_pct", "sbp_mmhg", "dbp_mmhg",
            "map_mmhg", "hr_bpm"]


def test_endpoints_are_the_contract_in_order():
    assert list(ENDPOINTS)[:11] == STANDARD
    assert ENDPOINTS["pra_ng_per_ml_per_h"] == "ng/mL/h" and ENDPOINTS["hr_bpm"] == "1/min"


def test_patient_parameters_have_sane_ranges():
    assert PATIENT_PARAMETERS
    for name, spec in PATIENT_PARAMETERS.items():
        assert spec.name == name and spec.lower <= spec.default <= spec.upper and spec.doc


def test_errors_carry_field_and_message():
    from twin.errors import ScenarioError, TwinError

    with pytest.raises(ScenarioError) as info:
        simulate(Scenario(), [])
    assert isinstance(info.value, TwinError) and info.value.field == "times_h"
    assert str(info.value) == f"times_h: {info.value.message}"


def test_result_shapes_and_frame():
    res = simulate([Scenario(), Scenario(regimen=Regimen(dose_mg=10))], [0.0, 1.0, 2.5])
    assert isinstance(res.times_h, np.ndarray) and res.times_h.shape == (3,)
    for name in STANDARD:
        assert res.endpoints[name].shape == (2, 3) and res.endpoints[name].dtype == torch.float64
    frame = res.to_frame(1)
    assert list(frame.columns[:12]) == ["time_h", *STANDARD]
    assert frame["diacid_ng_per_ml"].iloc[-1] > 0
    assert float(res.endpoints["diacid_ng_per_ml"][0].abs().max()) == 0.0


def test_every_drug_in_the_library_inhibits_ace():
    doses = [min(80.0, twin.drug_pk(d).nominal_dose_mg) for d in twin.DRUG_NAMES]
    scen = [Scenario(regimen=Regimen(drug=d, dose_mg=m))
            for d, m in zip(twin.DRUG_NAMES, doses, strict=True)]
    res = simulate(scen, [0.0, 8.0])
    # (lisinopril's published C50 of 33 ng/mL makes its single nominal dose a weak inhibitor)
    assert torch.all(res.endpoints["ace_inhibition_pct"][:, 1] > 1.0)
    assert torch.all(res.endpoints["angII_pg_per_ml"][:, 1] < res.endpoints[
        "angII_pg_per_ml"][:, 0])


def test_infection_and_glucose_profiles_change_the_course():
    res = simulate([Scenario(), Scenario(infected=True, infection_onset_h=2.0),
                    Scenario(glucose="diabetic"), Scenario(glucose="normal")],
                   np.arange(0.0, 48.0, 1.0))
    e = res.endpoints
    assert torch.allclose(e["ace2_per_h"][1, :3], e["ace2_per_h"][0, :3])
    assert float(e["ace2_per_h"][1, -1]) < 0.5 * float(e["ace2_per_h"][0, -1])
    assert float(e["angII_pg_per_ml"][2].std()) > 0.01
    # Without a personal baseline, higher glucose raises the default AngII (Pilvankar rates).
    assert float(e["angII_pg_per_ml"][2].mean()) > float(e["angII_pg_per_ml"][0, 0])
    g = twin.glucose.profile_mmol_per_l(torch.tensor([0.0, 24.0, 8.9, 32.9]), "normal")
    assert float(g[0]) == pytest.approx(float(g[1])) and float(g[2]) == pytest.approx(float(g[3]))


def test_waveform_matches_the_twin_pressures():
    scen = Scenario(baseline={"sbp_mmhg": 155.0, "dbp_mmhg": 100.0, "hr_bpm": 60.0})
    w = twin.waveform(scen, at_h=0.0, beats=2, dt_s=0.01)
    assert set(w) >= {"time_s", "arterial_pressure_mmhg", "sbp_mmhg", "dbp_mmhg", "hr_bpm"}
    assert len(w["time_s"]) == len(w["arterial_pressure_mmhg"])
    assert w["time_s"][-1] == pytest.approx(2.0, abs=0.02)
    assert w["sbp_mmhg"] == pytest.approx(155.0, abs=3.0)
    assert w["dbp_mmhg"] == pytest.approx(100.0, abs=3.0)
    assert w["hr_bpm"] == pytest.approx(60.0)
    with pytest.raises(TwinError, match="beats"):
        twin.waveform(scen, at_h=0.0, beats=0)


def test_pressure_waveform_matches_given_pressures():
    w = twin.pressure_waveform(162.0, 97.0, 74.0, beats=3)
    assert w["sbp_mmhg"] == pytest.approx(162.0, abs=3.0)
    assert w["dbp_mmhg"] == pytest.approx(97.0, abs=3.0)
    assert w["hr_bpm"] == pytest.approx(74.0)
    assert w["time_s"][-1] == pytest.approx(3 * 60.0 / 74.0, abs=0.02)
    for args, match in (((90.0, 95.0, 70.0), "sbp_mmhg"), ((120.0, 80.0, 400.0), "hr_bpm"),
                        ((900.0, 80.0, 70.0), "sbp_mmhg")):
        with pytest.raises(TwinError, match=match):
            twin.pressure_waveform(*args)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"times_h": []}, "times_h"),
    ({"times_h": [0.0, 2.0, 1.0]}, "times_h"),
    ({"times_h": [-1.0, 1.0]}, "times_h"),
    ({"parameters": "best"}, "parameters"),
    ({"overrides": {"nonsense": torch.ones(1)}}, "overrides"),
    ({"overrides": {"ace_c50": torch.ones(3)}}, "overrides"),
    ({"scenarios": []}, "scenarios"),
])
def test_simulate_rejects_bad_input(kwargs, match):
    args = {"scenarios": Scenario(), "times_h": [0.0, 1.0], **kwargs}
    with pytest.raises(TwinError, match=match):
        simulate(args.pop("scenarios"), args.pop("times_h"), **args)
