"""Real-data loader, split, state-space filter and evaluate_real (fast)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from twin.forecast.evaluate_real import evaluate_real, state_space_engine
from twin.forecast.state_space import PatientFilter, SSParams
from twin.realdata.cli import PARAMS_PATH
from twin.realdata.loader import CohortError, load_cohort
from twin.realdata.split import split_of


def _write(d, n_stays=3, hours=30, sbp=None, drop=None, empty_stay=False):
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    rng = np.random.default_rng(0)
    for sid in range(1, n_stays + 1):
        for t in range(hours):
            rows.append({"stay_id": sid, "time": pd.Timedelta(hours=t),
                         "sbp": 120 + rng.normal(0, 5), "dbp": 70.0, "map": 85.0,
                         "hr": 80.0, "resp": 18.0, "o2sat": 97.0, "temp": 37.0})
    dyn = pd.DataFrame(rows)
    if sbp is not None:
        dyn.loc[: len(sbp) - 1, "sbp"] = sbp
    if drop:
        dyn = dyn.drop(columns=[drop])
    ids = list(range(1, n_stays + 1)) + ([99] if empty_stay else [])
    sta = pd.DataFrame({"stay_id": ids, "age": [45.0] * len(ids), "sex": ["Male"] * len(ids)})
    dyn.to_parquet(d / "dyn.parquet")
    sta.to_parquet(d / "sta.parquet")
    dyn[["stay_id", "time"]].assign(label=1.0).to_parquet(d / "outc.parquet")
    return d


def test_rejections_counted(tmp_path):
    d = _write(tmp_path / "c", sbp=[0.0, -5.0, 350.0, 30.0, 120.0])
    c = load_cohort(d)
    assert c.rejected["sbp_mmhg"]["nonpositive"] == 2
    assert c.rejected["sbp_mmhg"]["out_of_range"] == 2
    assert len(c.stays[0].values["sbp_mmhg"]) == 30 - 4
    assert c.rejected["sbp_mmhg"]["kept"] == 3 * 30 - 4


def test_missing_file_column_empty_stay(tmp_path):
    d = _write(tmp_path / "a")
    (d / "outc.parquet").unlink()
    with pytest.raises(CohortError, match=r"outc\.parquet"):
        load_cohort(d)
    d = _write(tmp_path / "b")
    pd.read_parquet(d / "sta.parquet").drop(columns=["age"]).to_parquet(d / "sta.parquet")
    with pytest.raises(CohortError) as e:
        load_cohort(d)
    assert e.value.column == "age" and "sta.parquet" in str(e.value)
    with pytest.raises(CohortError, match="empty stay"):
        load_cohort(_write(tmp_path / "c", empty_stay=True))


def test_unknown_units(tmp_path):
    d = _write(tmp_path / "u")
    (d / "units.json").write_text(json.dumps({"temp": "kelvin"}))
    with pytest.raises(CohortError) as e:
        load_cohort(d)
    assert e.value.column == "temp"
    (d / "units.json").write_text(json.dumps({"temp": "degF"}))
    dyn = pd.read_parquet(d / "dyn.parquet")
    dyn["temp"] = 98.6
    dyn.to_parquet(d / "dyn.parquet")
    assert abs(load_cohort(d).stays[0].values["temp_c"][0] - 37.0) < 1e-6
    (d / "units.json").unlink()
    with pytest.raises(CohortError, match="unknown units"):
        load_cohort(d)


def test_split_fixed_and_patient_level():
    c = load_cohort("data/eicu_demo/los")
    assert split_of(141765) == split_of("141765") == split_of(141765)
    by_id = {}
    for s in c.stays:
        by_id.setdefault(s.stay_id, set()).add(s.split)
    assert all(len(v) == 1 for v in by_id.values())
    frac = np.mean([s.split == "train" for s in c.stays])
    assert 0.55 < frac < 0.65
    m = load_cohort("data/eicu_demo/mortality24")
    assert all(s.split == split_of(s.stay_id) for s in m.stays)


def test_kalman_recovers_level():
    p = SSParams(mu0=120, v_m=400, v_s=100, tau_s=20, v_f=30, tau_f=2, r=25)
    f = PatientFilter(p)
    rng = np.random.default_rng(1)
    for t in range(80):
        f.update(float(t), 90.0 + rng.normal(0, 5))
    mu, sd = f.forecast(1.0)
    assert abs(mu - 90) < 4 and sd < 15


def test_evaluate_json_keys(tmp_path):
    c = load_cohort(_write(tmp_path / "e", n_stays=4, hours=40))
    params = json.loads(PARAMS_PATH.read_text())
    out = evaluate_real(c, state_space_engine(params["params"]), horizons=(1, 4),
                        table=params["conformal"]["none"])
    assert {"data", "stays", "model_version", "default_engine", "results"} <= set(out)
    r = out["results"]["state_space"]["sbp_mmhg"]["4"]
    assert {"n", "mae", "rmse", "coverage", "width"} <= set(r)
    assert set(r["coverage"]) == {"0.8", "0.9", "0.95"} and "0.9" in r["width"]
    assert {"persistence", "mean3", "mean12"} <= set(out["results"])
    assert "skipped_no_target" in out


def test_deteriorating_patient():
    params = json.loads(PARAMS_PATH.read_text())
    p = SSParams(**params["params"]["sbp_mmhg"])
    q90 = params["conformal"]["none"]["state_space"]["sbp_mmhg"]["1"]["0.9"]
    f = PatientFilter(p)
    for t, y in zip((0.0, 13.0, 27.0, 40.0), (148.0, 138.0, 118.0, 96.0), strict=False):
        f.update(t, y)
    mu, sd = f.forecast(1.0)
    assert mu <= 106
    assert mu - q90 * sd <= 96 <= mu + q90 * sd


def test_cli_bad_cohort_is_one_clear_error(tmp_path, capsys):
    from twin.realdata.cli import main
    d = _write(tmp_path / "c")
    pd.read_parquet(d / "dyn.parquet").drop(columns=["time"]).to_parquet(d / "dyn.parquet")
    rc = main(["evaluate-real", "--data", str(d), "--model", str(PARAMS_PATH)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "dyn.parquet" in err and "'time'" in err and "Traceback" not in err
