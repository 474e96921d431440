"""Model bundles: round trip on a local path and on S3 (a local moto server), refusal of
corrupt or incompatible bundles."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.twin.forecast.helpers import scenario, synthetic_case
from twin import BundleError, load_forecaster
from twin.bundle import FORMAT_VERSION


@pytest.fixture
def forecaster(tiny_fc):
    return tiny_fc


def _same_forecasts(a, b) -> None:
    case, _ = synthetic_case(np.random.default_rng(7))
    for engine in a.engines:
        fa = a.forecast(scenario(), case.observations, case.now_h, engine=engine).to_dict()
        fb = b.forecast(scenario(), case.observations, case.now_h, engine=engine).to_dict()
        assert fa == fb, engine


def test_local_round_trip(forecaster, tmp_path):
    manifest = forecaster.save(str(tmp_path / "model"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["files"]) == {"config.json", "weights.pt", "conformal.npz",
                                      "metrics.json"}
    assert manifest["git_sha"]
    loaded = load_forecaster(str(tmp_path / "model"))
    assert loaded.version == forecaster.version
    assert loaded.engines == forecaster.engines
    assert loaded.default_engine == "graph"
    assert loaded.metrics == {"note": "synthetic"}
    _same_forecasts(forecaster, loaded)


def test_missing_bundle_is_refused(tmp_path):
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        load_forecaster(str(tmp_path / "nothing-here"))


def test_corrupt_weights_are_refused(forecaster, tmp_path):
    path = tmp_path / "model"
    forecaster.save(str(path))
    data = bytearray((path / "weights.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "weights.pt").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"weights.pt is corrupt \(checksum mismatch\)"):
        load_forecaster(str(path))


def test_truncated_manifest_is_refused(forecaster, tmp_path):
    path = tmp_path / "model"
    forecaster.save(str(path))
    (path / "manifest.json").write_text((path / "manifest.json").read_text()[:40])
    with pytest.raises(BundleError, match="not valid JSON"):
        load_forecaster(str(path))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": FORMAT_VERSION + 1}, "incompatible with this code"),
        ({"format": "something-else"}, "not a ras-twin-forecast-bundle"),
        ({"endpoints": ["sbp_mmhg"]}, "endpoints .* do not match"),
    ],
)
def test_incompatible_bundle_is_refused(forecaster, tmp_path, change, message):
    path = tmp_path / "model"
    forecaster.save(str(path))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(change)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        load_forecaster(str(path))


def test_content_that_does_not_fit_the_code_is_refused(forecaster, tmp_path):
    """A bundle whose checksums are right but whose content this code cannot use."""
    from twin.bundle import sha256

    path = tmp_path / "model"
    forecaster.save(str(path))
    config = json.loads((path / "config.json").read_text())
    config["engine_states"]["graph"]["config"]["hidden"] = 32  # weights no longer fit
    raw = json.dumps(config).encode()
    (path / "config.json").write_bytes(raw)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["config.json"] = sha256(raw)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="incompatible or corrupt content"):
        load_forecaster(str(path))


# ---- S3 against a local moto server ------------------------------------------------------
@pytest.fixture
def s3_env(moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import boto3

    client = boto3.client("s3")
    if "models" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="models")  # one moto server per session
    return client


def test_s3_round_trip(forecaster, s3_env):
    uri = "s3://models/forecast/v1"
    forecaster.save(uri)
    keys = {o["Key"] for o in s3_env.list_objects_v2(Bucket="models")["Contents"]}
    assert "forecast/v1/manifest.json" in keys and "forecast/v1/weights.pt" in keys
    loaded = load_forecaster(uri)
    assert loaded.version == forecaster.version
    _same_forecasts(forecaster, loaded)


def test_s3_corrupt_and_missing_are_refused(forecaster, s3_env):
    uri = "s3://models/forecast/v2"
    forecaster.save(uri)
    s3_env.put_object(Bucket="models", Key="forecast/v2/conformal.npz", Body=b"garbage")
    with pytest.raises(BundleError, match=r"conformal\.npz is corrupt"):
        load_forecaster(uri)
    with pytest.raises(BundleError, match=r"cannot read manifest\.json"):
        load_forecaster("s3://models/forecast/none")
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")
