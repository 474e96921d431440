"""Per-patient alert overrides: a patient's own threshold, clear value or on/off for a rule of
the rules file, validated against the rule (known name, threshold only where the rule has
one, the hysteresis band the right way round); setting them re-evaluates the patient."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app import db
from app.alerts.rules import Rule
from app.alerts.service import effective_rules, evaluate_patient, iso, ruleset
from app.errors import ApiError, field_error
from app.models import AlertOverride, Patient, utcnow


def _override_dict(o: AlertOverride) -> dict:
    return {"rule": o.rule, "threshold": o.threshold, "clear": o.clear, "enabled": o.enabled,
            "updated_by": o.updated_by, "updated_at": iso(o.updated_at)}


def get_overrides(patient_id: str) -> dict:
    """The patient's overrides and the rules as they apply to this patient."""
    s = db.session()
    if s.get(Patient, patient_id) is None:
        raise ApiError(404, "Not Found", f"patient {patient_id!r} does not exist",
                       [{"field": "patient_id", "message": "unknown patient"}])
    rows = s.scalars(select(AlertOverride).where(AlertOverride.patient_id == patient_id)
                     .order_by(AlertOverride.rule))
    return {"patient_id": patient_id, "overrides": [_override_dict(o) for o in rows],
            "rules": [rule_dict(r) for r in effective_rules(s, patient_id)]}


def rule_dict(r: Rule) -> dict:
    """A rule as the API shows it."""
    return {"name": r.name, "kind": r.kind, "level": r.level, "code": r.code,
            "op": None if r.kind == "news2_single_parameter_3" else r.op,
            "threshold": r.threshold, "clear": r.clear, "threshold_scale2": r.threshold_scale2,
            "clear_scale2": r.clear_scale2, "max_age_h": r.max_age_h, "enabled": r.enabled,
            "horizon_h": r.horizon_h if r.kind == "forecast" else None,
            "direction": r.direction if r.kind == "trend" else None,
            "window_h": r.window_h if r.kind == "trend" else None,
            "replaces": list(r.replaces),
            "description": r.description}


def _check_override(i: int, item: dict[str, Any], seen: set[str]) -> Rule:
    rules = ruleset().rules
    name = item["rule"]
    if name not in rules:
        raise field_error(f"overrides[{i}].rule", f"unknown rule {name!r} (known: "
                          + ", ".join(rules) + ")")
    if name in seen:
        raise field_error(f"overrides[{i}].rule", f"rule {name!r} given twice")
    seen.add(name)
    rule = rules[name]
    if rule.kind == "news2_single_parameter_3":
        for key in ("threshold", "clear"):
            if item.get(key) is not None:
                raise field_error(f"overrides[{i}].{key}", f"rule {name} has no threshold")
    eff = rule.with_override(item.get("threshold"), item.get("clear"), item.get("enabled"))
    if eff.threshold is not None and eff.clear is not None and (
            eff.clear < eff.threshold if eff.low else eff.clear > eff.threshold):
        side = "at or above" if eff.low else "at or below"
        raise field_error(f"overrides[{i}].clear", f"must be {side} the threshold "
                          f"({eff.threshold:g}) for rule {name} (op {eff.op!r})")
    return eff


def set_overrides(patient_id: str, items: list[dict[str, Any]], user: str | None) -> dict:
    """Replace the patient's overrides with ``items`` (each: rule, and threshold, clear,
    enabled: None keeps the file's); re-evaluates the patient."""
    s = db.session()
    get_overrides(patient_id)
    seen: set[str] = set()
    for i, item in enumerate(items):
        _check_override(i, item, seen)
    for o in s.scalars(select(AlertOverride).where(AlertOverride.patient_id == patient_id)):
        s.delete(o)
    s.flush()
    now = utcnow()
    for item in items:
        s.add(AlertOverride(patient_id=patient_id, rule=item["rule"],
                            threshold=item.get("threshold"), clear=item.get("clear"),
                            enabled=item.get("enabled"), updated_by=user, updated_at=now))
    s.commit()
    evaluate_patient(patient_id)
    return get_overrides(patient_id)
