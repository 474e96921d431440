"""The alert rules file: TOML, loaded and validated once when the service starts.

The shipped default is ``app/alerts/rules.toml``; ``ALERT_RULES_FILE`` points at another one.
A bad file (unknown key, wrong type, unknown level or kind, missing threshold, a hysteresis
band the wrong way round) raises :class:`RulesError` whose message names the file and the key
(``rules.sbp_low.threshold: missing``), so ``create_app`` (and so the service) refuses to start.

Layout (see the shipped file for every rule)::

    [defaults]
    max_age_h = 12          # readings older than this neither raise nor clear

    [escalation]            # minutes unacknowledged before a level escalates to the next
    watch = 240
    urgent = 30

    [rules.sbp_low]
    kind = "vital"          # vital | news2 | news2_single_parameter_3 | forecast | trend
    code = "sbp_mmhg"       # vital and forecast rules: the observation code
    level = "urgent"        # critical | urgent | watch
    op = "<"                # < <= > >=: raise while `value op threshold`
    threshold = 90
    clear = 95              # resolve only beyond this (hysteresis); default: the threshold

A trend rule (``direction = "falling"`` or ``"rising"``, ``window_h``) compares the robust
change of ``code`` over the window (``twin.monitoring.status.trend``: it must hold with any
one reading left out; at least 4 readings) with ``op = ">="`` and ``threshold``.

``replaces = ["news2_medium"]``: while this rule is met (or its alert open), the rules named
are not raised (an alert of theirs already open stays as it is).

A low rule (``<``, ``<=``) resolves when the value is at or above ``clear`` and no longer
meets the condition; a high rule (``>``, ``>=``) when it is at or below ``clear`` and no
longer meets it. Between threshold and clear an open alert stays open and none is raised.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

#: alert levels, least severe first (escalation walks up this list)
LEVELS = ("watch", "urgent", "critical")
KINDS = ("vital", "news2", "news2_single_parameter_3", "forecast", "trend")
OPS = ("<", "<=", ">", ">=")
DEFAULT_FILE = Path(__file__).with_name("rules.toml")

_RULE_KEYS = {"kind", "level", "code", "op", "threshold", "clear", "max_age_h", "enabled",
              "threshold_scale2", "clear_scale2", "horizon_h", "edge", "description",
              "direction", "window_h", "replaces"}
_TOP_KEYS = {"defaults", "escalation", "rules"}
_DEFAULT_KEYS = {"max_age_h"}
_EDGES = ("lower", "median", "upper")


class RulesError(RuntimeError):
    """The rules file is unusable; the message names the file and the key."""


@dataclass(frozen=True)
class Rule:
    """One validated rule (thresholds in the observation code's unit)."""

    name: str
    kind: str
    level: str
    op: str = ">="
    threshold: float | None = None
    clear: float | None = None
    code: str | None = None
    max_age_h: float = 12.0
    enabled: bool = True
    #: SpO2 rules: the thresholds for a patient on NEWS2 SpO2 scale 2
    threshold_scale2: float | None = None
    clear_scale2: float | None = None
    #: forecast rules: the hours ahead looked at, and which edge of the 90 % interval
    horizon_h: float = 24.0
    edge: str = "lower"
    #: trend rules: falling or rising, over the readings of the last ``window_h`` hours
    direction: str = "falling"
    window_h: float = 24.0
    #: rules not raised while this one is met or open (news2_high replaces news2_medium)
    replaces: tuple[str, ...] = ()
    description: str = ""

    @property
    def low(self) -> bool:
        """True for a rule on a value falling too low (``<``, ``<=``)."""
        return self.op in ("<", "<=")

    def met(self, value: float, threshold: float) -> bool:
        """Does ``value`` meet the raise condition?"""
        return {"<": value < threshold, "<=": value <= threshold,
                ">": value > threshold, ">=": value >= threshold}[self.op]

    def cleared(self, value: float, threshold: float, clear: float | None) -> bool:
        """Has ``value`` moved beyond the hysteresis band, so an open alert resolves?"""
        if self.met(value, threshold):
            return False
        if clear is None:
            return True
        return value >= clear if self.low else value <= clear

    def with_override(self, threshold: float | None, clear: float | None,
                      enabled: bool | None) -> Rule:
        """This rule with a patient's own values (None keeps the file's)."""
        changes: dict[str, Any] = {}
        if threshold is not None:
            # the file's hysteresis band moves with the threshold unless clear is given
            shift = (None if self.clear is None or self.threshold is None
                     else threshold + (self.clear - self.threshold))
            changes.update(threshold=threshold, clear=shift, threshold_scale2=None,
                           clear_scale2=None)
        if clear is not None:
            changes.update(clear=clear, clear_scale2=None)
        if enabled is not None:
            changes["enabled"] = enabled
        return replace(self, **changes)


@dataclass(frozen=True)
class RuleSet:
    """The validated file: rules by name and the escalation minutes by level."""

    rules: dict[str, Rule]
    escalate_after_min: dict[str, float]
    source: str

    def next_level(self, level: str) -> str | None:
        """The level an unacknowledged alert escalates to, or None (top, or not configured)."""
        if level not in self.escalate_after_min:
            return None
        i = LEVELS.index(level)
        return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


def _band_ok(rule: Rule, threshold: float, clear: float) -> bool:
    return clear >= threshold if rule.low else clear <= threshold


def _fail(source: str, key: str, message: str) -> RulesError:
    return RulesError(f"alert rules file {source}: {key}: {message}")


def _number(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value):
        raise _fail(source, key, f"must be a number, got {value!r}")
    return float(value)


def _table(source: str, key: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise _fail(source, key, f"must be a table, got {value!r}")
    return value


def _unknown(source: str, prefix: str, table: dict, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(source, f"{prefix}{key}", "unknown key (allowed: "
                        + ", ".join(sorted(allowed)) + ")")


def _choice(source: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _fail(source, key, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _rule(source: str, name: str, raw: Any, max_age_h: float,
          known_codes: set[str] | None) -> Rule:
    p = f"rules.{name}."
    raw = _table(source, p[:-1], raw)
    _unknown(source, p, raw, _RULE_KEYS)
    if "kind" not in raw:
        raise _fail(source, p + "kind", "missing (one of " + ", ".join(KINDS) + ")")
    kind = _choice(source, p + "kind", raw["kind"], KINDS)
    if "level" not in raw:
        raise _fail(source, p + "level", "missing (one of " + ", ".join(LEVELS) + ")")
    args: dict[str, Any] = {"name": name, "kind": kind,
                            "level": _choice(source, p + "level", raw["level"], LEVELS),
                            "max_age_h": max_age_h}
    for key in ("clear", "max_age_h", "threshold_scale2", "clear_scale2", "horizon_h",
                "threshold"):
        if key in raw:
            args[key] = _number(source, p + key, raw[key])
    if args["max_age_h"] <= 0:
        raise _fail(source, p + "max_age_h", "must be above 0")
    for key in ("enabled",):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise _fail(source, p + key, f"must be true or false, got {raw[key]!r}")
            args[key] = raw[key]
    if "replaces" in raw:
        names = raw["replaces"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _fail(source, p + "replaces", "must be a list of rule names")
        if name in names:
            raise _fail(source, p + "replaces", "a rule cannot replace itself")
        args["replaces"] = tuple(names)
    if "description" in raw:
        if not isinstance(raw["description"], str):
            raise _fail(source, p + "description", "must be a string")
        args["description"] = raw["description"]
    if kind == "news2_single_parameter_3":
        for key in ("op", "threshold", "clear", "code"):
            if key in raw:
                raise _fail(source, p + key, "not used by kind news2_single_parameter_3")
        return Rule(**args)
    args["op"] = _choice(source, p + "op", raw.get("op", ">="), OPS)
    if "threshold" not in raw:
        raise _fail(source, p + "threshold", "missing")
    if kind in ("vital", "forecast", "trend"):
        if "code" not in raw:
            raise _fail(source, p + "code", "missing (an observation code, e.g. sbp_mmhg)")
        code = raw["code"]
        if not isinstance(code, str) or (known_codes is not None and code not in known_codes):
            raise _fail(source, p + "code", f"unknown observation code {code!r}")
        args["code"] = code
    elif "code" in raw:
        raise _fail(source, p + "code", f"not used by kind {kind}")
    for key in ("window_h",):
        if key in raw:
            args[key] = _number(source, p + key, raw[key])
            if kind != "trend" or args[key] <= 0:
                raise _fail(source, p + key, "only trend rules have a window (hours > 0)")
    if kind == "trend":
        args["direction"] = _choice(source, p + "direction", raw.get("direction", "falling"),
                                    ("falling", "rising"))
        if args["op"] not in (">", ">="):
            raise _fail(source, p + "op", "a trend rule compares the size of the change: "
                        "use >= or >")
    elif "direction" in raw:
        raise _fail(source, p + "direction", "only trend rules have a direction")
    if kind == "forecast":
        args["edge"] = _choice(source, p + "edge", raw.get("edge", "lower"), _EDGES)
        if args.get("horizon_h", 24.0) <= 0:
            raise _fail(source, p + "horizon_h", "must be above 0")
    elif "edge" in raw or "horizon_h" in raw:
        raise _fail(source, p + ("edge" if "edge" in raw else "horizon_h"),
                    "only forecast rules look ahead")
    if ("threshold_scale2" in raw or "clear_scale2" in raw) and args.get("code") != "spo2_pct":
        raise _fail(source, p + "threshold_scale2", "only for rules on code spo2_pct")
    rule = Rule(**args)
    for t_key, c_key in (("threshold", "clear"), ("threshold_scale2", "clear_scale2")):
        t, c = getattr(rule, t_key), getattr(rule, c_key)
        if t is not None and c is not None and not _band_ok(rule, t, c):
            side = "at or above" if rule.low else "at or below"
            raise _fail(source, p + c_key, f"must be {side} {t_key} ({t:g}) for op "
                        f"{rule.op!r} (hysteresis band), got {c:g}")
    return rule


def parse(text: str, source: str = "<string>",
          known_codes: set[str] | None = None) -> RuleSet:
    """Validate the TOML ``text`` into a :class:`RuleSet`; raises :class:`RulesError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"alert rules file {source}: not valid TOML ({exc})") from None
    _unknown(source, "", data, _TOP_KEYS)
    defaults = _table(source, "defaults", data.get("defaults", {}))
    _unknown(source, "defaults.", defaults, _DEFAULT_KEYS)
    max_age_h = _number(source, "defaults.max_age_h", defaults.get("max_age_h", 12))
    escalation = _table(source, "escalation", data.get("escalation", {}))
    minutes = {}
    for level, value in escalation.items():
        _choice(source, f"escalation.{level}", level, LEVELS[:-1])
        minutes[level] = _number(source, f"escalation.{level}", value)
        if minutes[level] <= 0:
            raise _fail(source, f"escalation.{level}", "must be above 0 minutes")
    if "rules" not in data:
        raise _fail(source, "rules", "missing (at least one [rules.NAME] table)")
    raw_rules = _table(source, "rules", data["rules"])
    rules = {}
    for name, raw in raw_rules.items():
        if not name.replace("_", "").isalnum() or len(name) > 48:
            raise _fail(source, f"rules.{name}", "rule names are letters, digits and _ "
                        "(at most 48)")
        rules[name] = _rule(source, name, raw, max_age_h, known_codes)
    for name, rule in rules.items():
        for other in rule.replaces:
            if other not in rules:
                raise _fail(source, f"rules.{name}.replaces", f"unknown rule {other!r}")
    return RuleSet(rules, minutes, source)


def load(path: str | Path | None = None, known_codes: set[str] | None = None) -> RuleSet:
    """Read and validate the rules file at ``path`` (default: the shipped one)."""
    path = Path(path) if path else DEFAULT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"alert rules file {path}: cannot be read ({exc.strerror})") from None
    return parse(text, str(path), known_codes)
