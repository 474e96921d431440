"""Real-cohort subsets for the remaining-stay tests: a few stays of the shipped eICU demo
``los`` directory written to a temporary YAIB directory (reading the whole cohort takes a
few seconds; a subset keeps the fast tests fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import ROOT
from twin.realdata.split import split_of

#: the shipped copy of the eICU demo cohort (YAIB los layout)
LOS = ROOT / "data" / "eicu_demo" / "los"
FILES = ("dyn.parquet", "sta.parquet", "outc.parquet")


def stay_ids(counts: dict[str, int]) -> list[int]:
    """The first ``counts[split]`` stay ids (in sta.parquet order) of each split."""
    sta = pd.read_parquet(LOS / "sta.parquet", columns=["stay_id"])
    left = dict(counts)
    out = []
    for sid in sta["stay_id"].to_numpy():
        s = split_of(int(sid))
        if left.get(s, 0) > 0:
            left[s] -= 1
            out.append(int(sid))
    assert not any(left.values()), f"the cohort lacks stays: {left}"
    return out


def write_subset(dst: Path, ids: list[int]) -> Path:
    """Write the rows of stays ``ids`` of the three parquet files to ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    keep = np.asarray(ids)
    for f in FILES:
        df = pd.read_parquet(LOS / f)
        df[df["stay_id"].isin(keep)].reset_index(drop=True).to_parquet(dst / f)
    return dst
