"""`python -m twin evaluate-alerts`: a synthetic YAIB cohort end to end (task detection, JSON
keys, AUROC 1.0 on a perfectly separated cohort), AUROC itself, the alert lifecycle, bad
input, and (slow) the real mortality24 cohort reproducing NEWS2's published AUROC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.__main__ import main as twin_main
from twin.monitoring.evaluate_alerts import alerts, auroc, main, read_labels
from twin.realdata.split import split_of

#: the shipped copy of the eICU demo cohorts (data/eicu_demo, ODbL)
REAL = Path(__file__).resolve().parents[3] / "data" / "eicu_demo"
SICK = dict(sbp=85.0, dbp=50.0, map=62.0, hr=135.0, resp=28.0, o2sat=90.0, fio2=60.0,
            temp=39.5)
WELL = dict(sbp=125.0, dbp=75.0, map=92.0, hr=75.0, resp=16.0, o2sat=98.0, fio2=np.nan,
            temp=36.8)


def _ids(n: int) -> list[int]:
    """Stay ids spread over the three splits (so tuning and reporting both have events)."""
    out, by = [], {"train": 0, "calibration": 0, "test": 0}
    sid = 1000
    while len(out) < n:
        s = split_of(sid)
        if by[s] < n // 3 + 1:
            out.append(sid)
            by[s] += 1
        sid += 1
    return out


def write_cohort(d: Path, task: str = "mortality24", n: int = 30, hours: int = 25) -> Path:
    """Deaths / onsets in every third stay: those stays are 'sick' throughout (mortality24)
    or from hour 10 (sepsis); the rest are well."""
    d.mkdir(parents=True, exist_ok=True)
    rows, sta, outc = [], [], []
    for i, sid in enumerate(_ids(n)):
        event = i % 3 == 0
        for h in range(hours):
            sick = event and (task == "mortality24" or h >= 10)
            v = dict(SICK if sick else WELL)
            rows.append({"stay_id": sid, "time": pd.Timedelta(hours=h), **v})
            if task == "sepsis":
                outc.append({"stay_id": sid, "time": pd.Timedelta(hours=h),
                             "label": bool(event and 10 <= h <= 22)})
        sta.append({"stay_id": sid, "age": 60.0, "sex": "Female", "height": 165.0,
                    "weight": 70.0})
        if task == "mortality24":
            outc.append({"stay_id": sid, "label": int(event)})
    pd.DataFrame(rows).to_parquet(d / "dyn.parquet")
    pd.DataFrame(sta).to_parquet(d / "sta.parquet")
    pd.DataFrame(outc).to_parquet(d / "outc.parquet")
    return d


def test_auroc_rank_based_with_ties():
    assert auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert auroc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert auroc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5
    # one tie between a positive and a negative counts half: (3 + 0.5) / 4
    assert auroc([1, 2, 2, 3], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert np.isnan(auroc([1, 2], [1, 1]))


def test_alert_lifecycle_hysteresis():
    on = np.array([0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0], bool)
    # raised at 1; the one-hour gap at 3 keeps it open; clears after 5, 6; raised again at 7
    assert alerts(on, clear_h=2).tolist() == [1, 7]
    assert alerts(on, clear_h=1).tolist() == [1, 4, 7]
    assert alerts(np.zeros(5, bool)).tolist() == []


def test_task_detection(tmp_path):
    assert read_labels(write_cohort(tmp_path / "m", "mortality24", n=6))[0] == "mortality24"
    assert read_labels(write_cohort(tmp_path / "s", "sepsis", n=6))[0] == "sepsis"


def test_cli_mortality24_end_to_end(tmp_path, capsys):
    d = write_cohort(tmp_path / "m24")
    out = tmp_path / "out.json"
    rc = twin_main(["evaluate-alerts", "--data", str(d), "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert {"data", "stays", "task", "results", "operating_point", "excluded"} <= set(doc)
    assert doc["task"] == "mortality24" and doc["stays"] == 30
    assert {"news2", "ours"} <= set(doc["results"])
    for rule in ("news2", "ours"):
        r = doc["results"][rule]
        assert r["auroc"] == 1.0
        assert {"recall", "alarms_per_patient_hour", "events", "caught"} <= set(r)
    assert doc["results"]["news2"]["recall"] == 1.0
    assert doc["results"]["all_stays"]["news2"]["auroc"] == 1.0
    assert doc["operating_point"]["tuned_on"] == "train"
    printed = capsys.readouterr().out
    assert "NEWS2 >= 5" in printed and "AUROC" in printed


def test_cli_sepsis_end_to_end(tmp_path):
    d = write_cohort(tmp_path / "sep", "sepsis")
    out = tmp_path / "out.json"
    assert main(["--data", str(d), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["task"] == "sepsis"
    r = doc["results"]["all_stays"]["news2"]
    assert r["events"] == 10 and r["recall"] == 1.0
    # per hour: the sick hours 10-22 are labelled; hours 23-24 are sick but unlabelled
    assert 0.9 < r["auroc"] < 1.0
    assert r["alarms_per_patient_hour"] == pytest.approx(10 / (30 * 25))


def test_cli_missing_column_is_one_clear_error(tmp_path, capsys):
    d = write_cohort(tmp_path / "bad", n=6)
    pd.read_parquet(d / "outc.parquet").drop(columns=["label"]).to_parquet(d / "outc.parquet")
    rc = twin_main(["evaluate-alerts", "--data", str(d)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "outc.parquet" in err and "'label'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_missing_dyn_column(tmp_path, capsys):
    d = write_cohort(tmp_path / "bad", n=6)
    pd.read_parquet(d / "dyn.parquet").drop(columns=["time"]).to_parquet(d / "dyn.parquet")
    assert main(["--data", str(d)]) == 2
    err = capsys.readouterr().err
    assert "dyn.parquet" in err and "'time'" in err


def test_cli_non_binary_labels(tmp_path, capsys):
    d = write_cohort(tmp_path / "los", n=6)
    o = pd.read_parquet(d / "outc.parquet")
    o["label"] = 17.5
    o.to_parquet(d / "outc.parquet")
    assert main(["--data", str(d)]) == 2
    assert "not binary" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "mortality24").is_dir(), reason="real cohort not present")
def test_real_mortality24_news2_auroc(tmp_path):
    out = tmp_path / "m24.json"
    assert main(["--data", str(REAL / "mortality24"), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["task"] == "mortality24"
    assert 0.75 <= doc["results"]["all_stays"]["news2"]["auroc"] <= 0.85


def test_cli_folds_adds_out_of_fold_figures(tmp_path):
    d = write_cohort(tmp_path / "m24", n=24)
    out = tmp_path / "out.json"
    assert main(["--data", str(d), "--json", str(out), "--folds", "2"]) == 0
    cf = json.loads(out.read_text())["crossfit"]
    assert cf["folds"] == 2 and len(cf["configs"]) == 2
    assert cf["ours"]["events"] == cf["news2"]["events"] == 8
    assert cf["news2"]["auroc"] == 1.0 and cf["ours"]["recall"] == 1.0
