"""Typed errors of the twin: each names the input ``field`` and gives a ``message``.

Callers (the service) map ``exc.field`` / ``exc.message`` to their own responses without
parsing text; ``str(exc)`` is ``"field: message"``.
"""

from __future__ import annotations


class TwinError(Exception):
    """Base of the twin's errors: ``field`` (e.g. ``"age_years"``) and ``message``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ScenarioError(TwinError):
    """An invalid scenario or regimen field (the message gives the allowed range)."""


class ObservationError(TwinError):
    """An observation set the forecaster cannot use."""


class ForecastError(TwinError):
    """An invalid forecast request option (engine, now_h, horizon_h, step_h, coverage)."""


class BundleError(TwinError, RuntimeError):
    """A model bundle that cannot be read or does not match this code (field ``"model"``)."""
