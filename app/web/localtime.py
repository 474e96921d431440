"""The ward's local time (``WARD_TIMEZONE``, an IANA zone such as ``Europe/Berlin``).

Pages show times and take form times in the ward's zone; everything stored and every API
time stays UTC. ``parse_local`` reads a form's ``datetime-local`` value (no offset) as ward
time, or an explicit offset as given; ``local`` is the Jinja filter that shows a stored time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app


def zone() -> ZoneInfo:
    """The ward's time zone (UTC unless ``WARD_TIMEZONE`` says otherwise)."""
    return ZoneInfo(current_app.config.get("WARD_TIMEZONE") or "UTC")


def parse_local(raw: str) -> datetime:
    """A form's date and time as an aware UTC datetime (ValueError if not one)."""
    t = datetime.fromisoformat(raw)
    try:
        return (t if t.tzinfo else t.replace(tzinfo=zone())).astimezone(UTC)
    except OverflowError:  # e.g. year 1 in a zone east of UTC
        raise ValueError("time out of range") from None


def now_local() -> datetime:
    """Now in the ward's zone, to the minute, without tzinfo (a form's default value)."""
    return datetime.now(zone()).replace(second=0, microsecond=0, tzinfo=None)


def to_form(t: datetime | None) -> str:
    """A stored time as a ``datetime-local`` value in ward time ('' for None)."""
    return t.astimezone(zone()).strftime("%Y-%m-%dT%H:%M") if t else ""


def local(t: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M",
          zone_name: bool = True) -> str:
    """A stored time (or ISO string) shown in ward time, with the zone's abbreviation (e.g.
    'CET') unless ``zone_name`` is False (a table whose heading names the zone)."""
    if t is None:
        return ""
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    lt = t.astimezone(zone())
    return f"{lt.strftime(fmt)} {lt.tzname()}" if zone_name else lt.strftime(fmt)


def init_app(app: Flask) -> None:
    """Check ``WARD_TIMEZONE`` at start-up; register the ``local`` filter and ``ward_tz``."""
    name = app.config.get("WARD_TIMEZONE") or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuntimeError(f"WARD_TIMEZONE={name!r} is not an IANA time zone") from exc
    app.add_template_filter(local, "local")
    app.add_template_filter(to_form, "to_form")
    app.context_processor(lambda: {"ward_tz": datetime.now(zone()).tzname(),
                                   "ward_zone": zone().key})
