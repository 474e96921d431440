"""The shipped remaining-stay model: it loads, predicts ordered intervals within [0, cap],
estimates from an hourly grid, survives save/load, and bad files raise BundleError."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from twin.errors import BundleError
from twin.los import FEATURES, LosEstimate, LosModel, load_model, stay_features
from twin.los.model import DEFAULT_PATH, FORMAT, FORMAT_VERSION, save_model


@pytest.fixture(scope="module")
def model() -> LosModel:
    return load_model()


def _grid(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    grid = {"hr": 90 + rng.normal(0, 8, n), "sbp": 115 + rng.normal(0, 10, n),
            "dbp": 65 + rng.normal(0, 5, n), "map": 82 + rng.normal(0, 5, n),
            "resp": 19 + rng.normal(0, 2, n), "o2sat": np.clip(96 + rng.normal(0, 1, n), 0, 100),
            "temp": np.full(n, np.nan), "crea": np.full(n, np.nan), "urine": np.full(n, np.nan)}
    grid["temp"][::4] = 37.1
    grid["crea"][::12] = 1.3
    grid["urine"][::2] = 60.0
    return grid


STATIC = {"age": 71.0, "sex_male": 0.0, "height": 160.0, "weight": 70.0}


def _rows(n: int = 80) -> np.ndarray:
    x = np.vstack([stay_features(_grid(n, s), STATIC) for s in range(3)])
    return np.vstack([x, stay_features({"hr": np.full(5, np.nan)}, {})])  # nothing measured


def test_shipped_model_loads(model):
    assert DEFAULT_PATH.is_file()
    assert model.version == "los-1"
    assert model.features == FEATURES
    assert model.coverage == 0.8 and model.cap_h == 168.0
    assert model.bands_h[0] == 0.0 and list(model.bands_h) == sorted(model.bands_h)
    assert len(model.correction_h) == len(model.bands_h)
    assert len(model.median) == len(model.median_log) >= 1
    assert model.trained_on  # describes the cohort it was fitted on


def test_predict_ordered_and_within_cap(model):
    x = _rows()
    med, lo, hi = model.predict(x)
    assert med.shape == lo.shape == hi.shape == (len(x),)
    assert np.isfinite(med).all() and np.isfinite(lo).all() and np.isfinite(hi).all()
    assert (lo <= med).all() and (med <= hi).all()
    assert (lo >= 0).all() and (hi <= 168.0).all()
    assert (hi - lo).max() > 0  # not a degenerate interval
    assert np.ptp(med) > 0  # depends on the features


def test_predict_applies_the_band_correction(model):
    x = _rows()
    lo_raw, med_raw, hi_raw = model.raw(x)
    med, lo, hi = model.predict(x)
    corr = np.asarray(model.correction_h)[model.band(x[:, 0])]
    np.testing.assert_allclose(med, np.clip(med_raw, 0, 168))
    np.testing.assert_allclose(lo, np.clip(np.minimum(lo_raw - corr, med), 0, 168))
    np.testing.assert_allclose(hi, np.clip(np.maximum(hi_raw + corr, med), 0, 168))
    b = model.band(np.array([0, 23.5, 24, 47, 48, 72, 119, 120, 500]))
    np.testing.assert_array_equal(b, [0, 0, 1, 1, 2, 3, 3, 4, 4])


def test_single_row_and_1d_input(model):
    x = _rows()
    med, lo, hi = model.predict(x)
    m1, l1, h1 = model.predict(x[7])
    assert (m1[0], l1[0], h1[0]) == (med[7], lo[7], hi[7])


def test_estimate_from_a_grid(model):
    grid = _grid(30)
    est = model.estimate(grid, STATIC)
    assert isinstance(est, LosEstimate)
    assert est.low_h <= est.median_h <= est.high_h
    assert est.low_h >= 0.0 and est.high_h <= 168.0
    assert est.coverage == 0.8
    assert est.hours_since_admission == 29.0
    med, lo, hi = model.predict(stay_features(grid, STATIC)[-1:])
    assert (est.median_h, est.low_h, est.high_h) == (med[0], lo[0], hi[0])
    # only one concept measured, one hour in: still an estimate
    one = model.estimate({"hr": np.array([88.0])}, {})
    assert one.hours_since_admission == 0.0
    assert one.low_h <= one.median_h <= one.high_h


@pytest.mark.parametrize("name", ["m.json", "m.json.gz"])
def test_save_load_round_trip(model, tmp_path, name):
    path = tmp_path / name
    save_model(model, path)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")
    if not name.endswith(".gz"):
        assert json.loads(raw)["format"] == FORMAT
    back = load_model(path)
    assert back.version == model.version and back.correction_h == model.correction_h
    assert back.bands_h == model.bands_h and back.median_log == model.median_log
    x = _rows()
    for a, b in zip(back.predict(x), model.predict(x), strict=True):
        np.testing.assert_array_equal(a, b)
    assert load_model(str(path)).version == model.version


def test_missing_file_raises_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="no such file"):
        load_model(tmp_path / "absent.json.gz")
    with pytest.raises(BundleError):
        load_model(tmp_path)  # a directory, not a file


@pytest.mark.parametrize("content", [
    b"not json at all", b"", b'{"format": 1}', b"{}", gzip.compress(b"{truncated"),
    gzip.compress(b"\xff\xfe\x00"), b"\xff\xfe\x00",
    b"\x1f\x8b\x08\x00garbage",  # a truncated gzip stream (EOFError)
    b"[1, 2, 3]", b"null"])  # JSON, but not an object
def test_corrupt_file_raises_bundle_error(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(BundleError):
        load_model(path)


@pytest.fixture(scope="module")
def doc_text(model) -> str:
    return json.dumps(model.to_dict())


def test_other_features_raise_bundle_error(doc_text, tmp_path):
    d = json.loads(doc_text)
    d["features"] = d["features"][:-1]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(d))
    with pytest.raises(BundleError, match="features"):
        load_model(path)
    d = json.loads(doc_text)
    d["features"][3], d["features"][4] = d["features"][4], d["features"][3]
    path.write_text(json.dumps(d))
    with pytest.raises(BundleError, match="features"):
        load_model(path)


@pytest.mark.parametrize("change", ["format", "version", "bands", "median", "trees", "key"])
def test_inconsistent_documents_raise_bundle_error(doc_text, tmp_path, change):
    d = json.loads(doc_text)
    if change == "format":
        d["format"] = "something-else"
    elif change == "version":
        d["format_version"] = FORMAT_VERSION + 1
    elif change == "bands":
        d["correction_h"] = d["correction_h"][:-1]
    elif change == "median":
        d["median_log"] = d["median_log"] + [True]
    elif change == "trees":
        d["lower"]["value"] = d["lower"]["value"][:-1]
    else:
        del d["upper"]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(d))
    with pytest.raises(BundleError):
        load_model(path)
