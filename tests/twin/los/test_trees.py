"""The numpy tree evaluator reproduces LightGBM's predictions exactly (NaN, zero and
missing-type handling included) and survives its JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from twin.los.trees import TreeEnsemble, from_lightgbm_dump

lgb = pytest.importorskip("lightgbm")


def _data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    x[rng.random(n) < 0.3, 0] = np.nan             # NaNs: missing_type NaN
    x[:, 1] = np.where(rng.random(n) < 0.4, 0.0, x[:, 1])  # many zeros
    x[rng.random(n) < 0.2, 2] = np.nan
    x[:, 3] = np.round(x[:, 3])                     # ties at integer thresholds
    x[:, 4] = 0.0                                   # all zero: never split on
    y = (np.nan_to_num(x[:, 0], nan=3.0) * 2 + x[:, 1] * 3 + np.nan_to_num(x[:, 2], nan=-2.0)
         + x[:, 3] + rng.normal(scale=0.3, size=n))
    return x, y


def _booster(x, y, alpha=0.9, **extra):
    params = {"objective": "quantile", "alpha": alpha, "num_leaves": 7, "learning_rate": 0.1,
              "min_child_samples": 10, "verbose": -1, "seed": 0, "deterministic": True,
              "num_threads": 1, **extra}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=30)


def _missing_types(dump) -> set[str]:
    out = set()

    def walk(t):
        if "leaf_value" in t:
            return
        out.add(t["missing_type"])
        walk(t["left_child"])
        walk(t["right_child"])

    for info in dump["tree_info"]:
        walk(info["tree_structure"])
    return out


def _probe(x: np.ndarray) -> np.ndarray:
    """Training rows plus rows that hit the missing/zero branches on every feature."""
    rows = [x[:200]]
    rng = np.random.default_rng(5)
    base = rng.normal(size=(60, x.shape[1]))
    for j in range(x.shape[1]):
        for v in (np.nan, 0.0, -0.0, 1e-40):
            r = base.copy()
            r[:, j] = v
            rows.append(r)
    rows.append(np.full((1, x.shape[1]), np.nan))
    rows.append(np.zeros((1, x.shape[1])))
    return np.vstack(rows)


@pytest.mark.parametrize("zero_as_missing", [False, True])
@pytest.mark.parametrize("use_missing", [True, False])
def test_equals_lightgbm(zero_as_missing, use_missing):
    x, y = _data()
    booster = _booster(x, y, zero_as_missing=zero_as_missing, use_missing=use_missing)
    dump = booster.dump_model()
    ens = from_lightgbm_dump(dump)
    assert len(ens.roots) == booster.num_trees() == 30
    probe = _probe(x)
    assert np.isnan(probe).any()
    np.testing.assert_allclose(ens.predict(probe), booster.predict(probe), rtol=0, atol=1e-9)


def test_missing_types_covered():
    """Between them the boosters of test_equals_lightgbm split with every missing type."""
    x, y = _data()
    seen = set()
    for zam, um in ((False, True), (True, True), (False, False)):
        seen |= _missing_types(_booster(x, y, zero_as_missing=zam, use_missing=um).dump_model())
    assert seen == {"None", "Zero", "NaN"}


def test_median_and_lower_quantiles_equal_lightgbm():
    x, y = _data(seed=3)
    probe = _probe(x)
    for alpha in (0.1, 0.5):
        booster = _booster(x, y, alpha=alpha)
        ens = from_lightgbm_dump(booster.dump_model())
        np.testing.assert_allclose(ens.predict(probe), booster.predict(probe), atol=1e-9,
                                   rtol=0)


def test_round_trip_through_json():
    x, y = _data()
    booster = _booster(x, y)
    ens = from_lightgbm_dump(booster.dump_model())
    back = TreeEnsemble.from_dict(json.loads(json.dumps(ens.to_dict())))
    probe = _probe(x)
    np.testing.assert_array_equal(back.predict(probe), ens.predict(probe))
    assert back.depth == ens.depth and len(back.roots) == len(ens.roots)


def test_chunking_and_single_row():
    x, y = _data()
    ens = from_lightgbm_dump(_booster(x, y).dump_model())
    probe = _probe(x)
    whole = ens.predict(probe)
    np.testing.assert_array_equal(ens.predict(probe, chunk=7), whole)
    assert ens.predict(probe[3]).shape == (1,)
    assert ens.predict(probe[3])[0] == whole[3]
    assert ens.predict(np.zeros((0, x.shape[1]))).shape == (0,)


def test_from_dict_rejects_inconsistent_arrays():
    x, y = _data()
    d = from_lightgbm_dump(_booster(x, y).dump_model()).to_dict()
    short = {**d, "threshold": d["threshold"][:-1]}
    with pytest.raises(ValueError, match="length"):
        TreeEnsemble.from_dict(short)
    bad = {**d, "left": [len(d["left"]), *d["left"][1:]]}
    with pytest.raises(ValueError, match="out of range"):
        TreeEnsemble.from_dict(bad)


def test_categorical_split_rejected():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, size=(400, 2)).astype(float)
    y = np.where(np.isin(x[:, 0], [1, 4]), 5.0, 0.0) + rng.normal(scale=0.1, size=400)
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_leaves": 4,
                         "min_data_per_group": 5, "cat_smooth": 1, "min_child_samples": 5},
                        lgb.Dataset(x, y, categorical_feature=[0]), num_boost_round=3)
    with pytest.raises(ValueError, match="unsupported split"):
        from_lightgbm_dump(booster.dump_model())
