#!/usr/bin/env python3
"""Fetch a model bundle from S3 to a local folder and print the local path to use.

``python scripts/fetch_model.py s3://bucket/models/v3 /tmp/model`` downloads the object
``models/v3`` (a single-file bundle) or every object under ``models/v3/`` (a folder bundle)
and prints the local path, which the container entrypoint exports as ``MODEL_URI``. AWS
credentials come from the task role; ``AWS_ENDPOINT_URL_S3`` points it at an emulator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> ``("bucket", "key/prefix")``."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/").rstrip("/")


def fetch(uri: str, dest: Path, s3=None) -> Path:
    """Download the bundle at ``uri`` below ``dest``; returns the local bundle path."""
    s3 = s3 or boto3.client("s3")
    bucket, key = split_s3_uri(uri)
    dest.mkdir(parents=True, exist_ok=True)
    name = Path(key).name or "model"
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        pass  # not a single object: a folder bundle
    else:
        target = dest / name
        s3.download_file(bucket, key, str(target))
        return target
    root = dest / name
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key + "/"):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(key) + 1:]
            if not rel or rel.endswith("/"):
                continue
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            count += 1
    if count == 0:
        raise FileNotFoundError(f"no model bundle at {uri}")
    return root


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(fetch(argv[0], Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
