"""Scenario/Regimen validation and the CLI's argument handling (exit code 2)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT
from twin import Regimen, Scenario, ScenarioError
from twin.cli import main as cli_main

BAD_REGIMENS = [
    ({"drug": "aspirin"}, "drug"),
    ({"dose_mg": 900}, "dose_mg: must be in [0, 80], got 900"),
    ({"dose_mg": -1}, "dose_mg"),
    ({"dose_mg": "5"}, "dose_mg"),
    ({"dose_mg": float("nan")}, "dose_mg"),
    ({"interval_h": 0.5}, "interval_h"),
    ({"n_doses": 0}, "n_doses"),
    ({"n_doses": 1.5}, "n_doses"),
    ({"start_h": -1}, "start_h"),
    ({"start_h": 10, "stop_h": 5}, "stop_h"),
    ({"missed_doses": (-1,)}, "missed_doses"),
    ({"extra_doses_h": (-3.0,)}, "extra_doses_h"),
]
BAD_SCENARIOS = [
    ({"age_years": 150}, "age_years: must be in [0, 120]"),
    ({"renal_function": "poor"}, "renal_function"),
    ({"glucose": 1.0}, "glucose: must be in [2, 30]"),
    ({"glucose": "sweet"}, "glucose"),
    ({"infected": "False"}, "infected"),
    ({"infection_onset_h": -2}, "infection_onset_h"),
    ({"regimen": "benazepril"}, "regimen"),
    ({"baseline": {"angII_pg_per_ml": 0.01}}, "baseline.angII_pg_per_ml: must be in [1, 300]"),
    ({"baseline": {"cholesterol": 5}}, "baseline: unknown name"),
    ({"baseline": {"sbp_mmhg": 100, "dbp_mmhg": 95}}, "baseline.sbp_mmhg"),
    ({"baseline": [1, 2]}, "baseline"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_REGIMENS)
def test_bad_regimen_names_the_field(kwargs, message):
    with pytest.raises(ScenarioError) as err:
        Regimen(**kwargs)
    assert message in str(err.value)
    assert err.value.field in message and err.value.message in str(err.value)


@pytest.mark.parametrize(("kwargs", "message"), BAD_SCENARIOS)
def test_bad_scenario_names_the_field(kwargs, message):
    with pytest.raises(ScenarioError) as err:
        Scenario(**kwargs)
    assert message in str(err.value)


def test_dose_times_handle_missed_extra_and_stop():
    r = Regimen(dose_mg=10, interval_h=12, start_h=2, stop_h=50, missed_doses=(1,),
                extra_doses_h=(5.0,))
    assert r.dose_times_h(100) == ((2.0, 10.0), (5.0, 10.0), (26.0, 10.0), (38.0, 10.0))
    assert Regimen(dose_mg=5, n_doses=2).dose_times_h(100) == ((0.0, 5.0), (24.0, 5.0))
    assert Regimen(dose_mg=0).dose_times_h(100) == ()


def test_a_change_of_regimen_keeps_the_past_doses_and_replaces_the_future():
    """10 mg daily from 0 h, then 20 mg every 12 h from 50 h: doses at 0, 24, 48 (10 mg)
    and 50, 62, ... (20 mg); the simulated diacid rises only after the change."""
    from twin import simulate

    before = Regimen(dose_mg=10, interval_h=24, start_h=0.0)
    changed = Regimen(dose_mg=10, interval_h=24, start_h=0.0,
                      then=Regimen(dose_mg=20, interval_h=12, start_h=50.0))
    assert changed.dose_times_h(80) == ((0.0, 10.0), (24.0, 10.0), (48.0, 10.0),
                                        (50.0, 20.0), (62.0, 20.0), (74.0, 20.0))
    stopped = Regimen(dose_mg=10, start_h=0.0, then=Regimen(dose_mg=0, start_h=30.0))
    assert stopped.dose_times_h(100) == ((0.0, 10.0), (24.0, 10.0))
    assert stopped.active_drug == "benazepril"
    start = Regimen(dose_mg=0, then=Regimen(drug="lisinopril", dose_mg=10, start_h=5.0))
    assert start.active_drug == "lisinopril" and start.dose_times_h(29) == ((5.0, 10.0),)
    times = [0.0, 49.0, 70.0]
    a = simulate(Scenario(regimen=before), times).endpoints["diacid_ng_per_ml"][0]
    b = simulate(Scenario(regimen=changed), times).endpoints["diacid_ng_per_ml"][0]
    assert float(a[1]) == pytest.approx(float(b[1]), rel=1e-6)  # same past
    assert float(b[2]) > 1.5 * float(a[2])  # the new regimen's future
    with pytest.raises(ScenarioError, match=r"then\.drug"):
        Regimen(dose_mg=10, then=Regimen(drug="lisinopril", dose_mg=10, start_h=5.0))
    with pytest.raises(ScenarioError, match=r"then\.start_h"):
        Regimen(dose_mg=10, start_h=10.0, then=Regimen(dose_mg=20, start_h=5.0))


def test_scenarios_copy_pickle_and_convert():
    import copy
    import dataclasses
    import pickle

    s = Scenario(glucose="diabetic", baseline={"angII_pg_per_ml": 12.0},
                 regimen=Regimen(dose_mg=10, missed_doses=(2,)))
    assert pickle.loads(pickle.dumps(s)) == s
    assert copy.deepcopy(s) == s
    d = dataclasses.asdict(s)
    assert d["regimen"]["dose_mg"] == 10.0 and d["baseline"] == {"angII_pg_per_ml": 12.0}
    assert dataclasses.replace(s, age_years=60).age_years == 60.0


def test_scenarios_are_hashable_and_compare_by_value():
    a = Scenario(baseline={"sbp_mmhg": 150})
    b = Scenario(baseline={"sbp_mmhg": 150})
    assert a == b and hash(a) == hash(b)
    assert a != Scenario(baseline={"sbp_mmhg": 151})


@pytest.mark.parametrize("argv", [
    ["--dose-mg", "900"],
    ["--glucose", "sweet"],
    ["--glucose", "50"],
    ["--renal", "poor"],
    ["--drug", "aspirin"],
    ["--baseline", "angII_pg_per_ml"],
    ["--baseline", "cholesterol=4"],
    ["--baseline", "angII_pg_per_ml=abc"],
    ["--baseline", "sbp_mmhg=1000"],
    ["--hours", "0"],
    ["--step-h", "0"],
    ["--format", "xml"],
    ["--parameters", "best"],
    ["--age", "-5"],
    ["--n-doses", "0"],
    ["--missed-doses", "a,b"],
    ["--missed-doses", "-1"],
    ["--extra-doses-h", "x"],
    ["--stop-h", "-4"],
])
def test_cli_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        code = cli_main([*argv, "--hours", "1"] if "--hours" not in argv else argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_cli_standard_and_reference_formats(tmp_path):
    out = tmp_path / "s.csv"
    code = cli_main(["--drug", "benazepril", "--dose-mg", "5", "--interval-h", "24",
                     "--n-doses", "1", "--hours", "24", "--glucose", "5", "--renal", "normal",
                     "--age", "50", "--baseline", "angII_pg_per_ml=11.8",
                     "--baseline", "sbp_mmhg=150", "--parameters", "clinical",
                     "--format", "standard", "--step-h", "0.048", "-o", str(out)])
    assert code == 0
    df = pd.read_csv(out)
    assert list(df.columns[:12]) == ["time_h", "angI_pg_per_ml", "angII_pg_per_ml",
                                     "renin_pg_per_ml", "pra_ng_per_ml_per_h",
                                     "ang17_pg_per_ml", "diacid_ng_per_ml",
                                     "ace_inhibition_pct", "sbp_mmhg", "dbp_mmhg", "map_mmhg",
                                     "hr_bpm"]
    assert df["angII_pg_per_ml"].iloc[0] == pytest.approx(11.8)
    assert df["sbp_mmhg"].iloc[0] == pytest.approx(150)
    assert df["time_h"].iloc[-1] == pytest.approx(24.0)
    ref = tmp_path / "r.csv"
    assert cli_main(["--dose-mg", "5", "--hours", "4.8", "--glucose", "normal",
                     "--parameters", "reference", "--format", "reference", "-o", str(ref)]) == 0
    dr = pd.read_csv(ref)
    assert list(dr.columns) == ["t", "angI", "Inhibition", "Renin", "AGT", "angII",
                                "angII_norm", "diacid", "ang17", "at1r", "at2r", "ACE2", "IR"]
    assert len(dr) == 100 and dr["t"].iloc[1] == pytest.approx(0.002)


def test_cli_regimen_options(tmp_path):
    out = tmp_path / "d.csv"
    assert cli_main(["--dose-mg", "10", "--interval-h", "12", "--missed-doses", "1",
                     "--extra-doses-h", "30", "--stop-h", "40", "--hours", "48", "--step-h", "1",
                     "-o", str(out)]) == 0
    c = pd.read_csv(out).set_index("time_h")["diacid_ng_per_ml"]
    assert c[12.0] < c[11.0]  # dose 1 (12 h) missed: concentration keeps falling
    assert c[25.0] > c[23.0] and c[31.0] > c[29.0]  # doses at 24 h and the extra at 30 h
    assert c[47.0] < c[41.0]  # no dose at 48 h (stop at 40 h)


def test_python_dash_m_twin_exit_codes():
    bad = subprocess.run([sys.executable, "-m", "twin", "simulate", "--dose-mg", "900"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert "dose_mg: must be in [0, 80], got 900" in bad.stderr
    unknown = subprocess.run([sys.executable, "-m", "twin", "frobnicate"], cwd=ROOT,
                             capture_output=True, text=True)
    assert unknown.returncode == 2 and "unknown command" in unknown.stderr
