"""Versioned model bundles on a local path or ``s3://bucket/prefix`` (boto3).

A bundle is a folder (or S3 prefix) of files plus ``manifest.json``, written last:

    manifest.json   format, format_version, model_version, created_utc, git_sha,
                    twin_version, endpoints, engines, files {name: sha256}
    config.json     training configuration, normalisation, priors, default engine
    weights.pt      the learned engines' state dicts (torch.save; loaded weights_only)
    conformal.npz   conformal scores per engine
    metrics.json    evaluation of the bundle's engines

Reading checks the format and version, that every listed file is present with its
checksum, and that the endpoints match this code; anything else raises ``BundleError``.
S3 uses the standard AWS configuration (``AWS_ENDPOINT_URL`` points boto3 at an emulator).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin.errors import BundleError

FORMAT = "ras-twin-forecast-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_sha() -> str:
    """The source commit (env GIT_SHA, else ``git rev-parse HEAD``, else "unknown")."""
    if os.environ.get("GIT_SHA"):
        return os.environ["GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _split_s3(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise BundleError("model", f"bundle URI {uri!r}: no bucket")
    return bucket, prefix.strip("/")


def _s3_client() -> Any:
    import boto3  # only the bundle loader touches AWS

    return boto3.client("s3")


def _write(uri: str, name: str, data: bytes) -> None:
    if uri.startswith("s3://"):
        bucket, prefix = _split_s3(uri)
        key = f"{prefix}/{name}" if prefix else name
        _s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    else:
        path = Path(uri)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path / name)


def _read(uri: str, name: str) -> bytes:
    if uri.startswith("s3://"):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = _split_s3(uri)
        key = f"{prefix}/{name}" if prefix else name
        try:
            return _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise BundleError("model", f"bundle {uri}: cannot read {name} ({exc})") from exc
    path = Path(uri) / name
    if not path.is_file():
        raise BundleError("model", f"bundle {uri}: {name} is missing")
    return path.read_bytes()


def write_bundle(uri: str, files: dict[str, bytes], meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``files`` and then the manifest (``meta`` plus format, checksums, provenance)."""
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_sha": git_sha(),
        **meta,
        "files": {name: sha256(data) for name, data in files.items()},
    }
    for name, data in files.items():
        _write(uri, name, data)
    _write(uri, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return manifest


def read_bundle(uri: str, endpoints: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read and verify a bundle; returns (manifest, files). Raises BundleError."""
    raw = _read(uri, MANIFEST)
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError("model",
            f"bundle {uri}: manifest.json is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("model",
            f"bundle {uri}: not a {FORMAT} (format={manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            "model",
                f"bundle {uri}: format_version {manifest.get('format_version')!r} is incompatible "
            f"with this code (expects {FORMAT_VERSION}); retrain with scripts/train_model.py"
        )
    if tuple(manifest.get("endpoints", ())) != tuple(endpoints):
        raise BundleError("model",
            f"bundle {uri}: endpoints {manifest.get('endpoints')} do not match "
                          f"this code's {list(endpoints)}")
    files = {}
    for name, digest in dict(manifest.get("files", {})).items():
        data = _read(uri, name)
        if sha256(data) != digest:
            raise BundleError("model", f"bundle {uri}: {name} is corrupt (checksum mismatch)")
        files[name] = data
    return manifest, files


def exists(uri: str) -> bool:
    """Whether a manifest is present at ``uri`` (not whether it is valid)."""
    try:
        _read(uri, MANIFEST)
        return True
    except BundleError:
        return False
