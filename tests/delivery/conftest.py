"""Delivery fixtures: AWS credentials for the local moto emulator (never real AWS)."""

from __future__ import annotations

import pytest

from tests.conftest import MOTO_CREDENTIALS


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> str:
    """Point boto3 at the moto server for one test; returns its URL."""
    for key, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    return moto_url
