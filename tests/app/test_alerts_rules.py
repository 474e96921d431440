"""The alert rules file: the shipped one is valid; a bad one stops create_app with a message
naming the key (unknown key, wrong type, bad level, missing threshold, band the wrong way)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import create_app
from app.alerts import rules
from app.codes import CODES

GOOD = """
[escalation]
urgent = 30

[rules.sbp_low]
kind = "vital"
code = "sbp_mmhg"
level = "urgent"
op = "<"
threshold = 90
clear = 95
"""


def _app(tmp_path: Path, text: str | None = None, **extra):
    config = {"TESTING": True, "PREWARM_FORECASTS": False,
              "DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}",
              "MODEL_URI": str(tmp_path / "model"), **extra}
    if text is not None:
        path = tmp_path / "rules.toml"
        path.write_text(text)
        config["ALERT_RULES_FILE"] = str(path)
    return create_app(config)


def test_the_shipped_rules_file_is_valid_and_has_the_issue_rules():
    rs = rules.load(None, set(CODES))
    assert {"news2_medium", "news2_high", "news2_single_parameter_3", "sbp_low", "sbp_high",
            "hr_high", "hr_low", "spo2_low", "temp_high", "forecast_sbp_low", "sbp_falling",
            "hr_rising"} <= set(rs.rules)
    sbp = rs.rules["sbp_low"]
    assert (sbp.op, sbp.threshold, sbp.clear, sbp.level) == ("<", 90, 95, "urgent")
    assert rs.rules["sbp_high"].clear == 170 and rs.rules["hr_high"].clear == 120
    assert rs.next_level("urgent") == "critical" and rs.next_level("critical") is None


def test_a_good_file_from_the_config_is_used(tmp_path):
    app = _app(tmp_path, GOOD)
    assert set(app.extensions["alert_rules"].rules) == {"sbp_low"}


def test_the_file_may_come_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "env-rules.toml"
    path.write_text(GOOD.replace("level = \"urgent\"", "level = \"urgnet\""))
    monkeypatch.setenv("ALERT_RULES_FILE", str(path))
    with pytest.raises(rules.RulesError, match=re.escape("rules.sbp_low.level")):
        _app(tmp_path)


BAD = [
    (GOOD.replace("clear = 95", "clear = 95\ncolour = \"red\""), "rules.sbp_low.colour",
     "unknown key"),
    (GOOD.replace("threshold = 90", "threshold = \"ninety\""), "rules.sbp_low.threshold",
     "must be a number"),
    (GOOD.replace("level = \"urgent\"", "level = \"panic\""), "rules.sbp_low.level",
     "must be one of watch, urgent, critical"),
    (GOOD.replace("threshold = 90\n", ""), "rules.sbp_low.threshold", "missing"),
    (GOOD.replace("clear = 95", "clear = 85"), "rules.sbp_low.clear", "hysteresis"),
    (GOOD.replace("code = \"sbp_mmhg\"", "code = \"sbp\""), "rules.sbp_low.code",
     "unknown observation code"),
    (GOOD.replace("op = \"<\"", "op = \"=<\""), "rules.sbp_low.op", "must be one of"),
    (GOOD.replace("urgent = 30", "urgent = \"soon\""), "escalation.urgent", "must be a number"),
    (GOOD.replace("urgent = 30", "critical = 30"), "escalation.critical", "must be one of"),
    (GOOD.replace("[rules.sbp_low]", "[rule.sbp_low]"), "rule", "unknown key"),
    (GOOD + "\n[rules.x]\nkind = \"news2\"\nlevel = \"watch\"\n", "rules.x.threshold",
     "missing"),
    (GOOD + "\n[rules.y]\nkind = \"gut_feeling\"\nlevel = \"watch\"\n", "rules.y.kind",
     "must be one of"),
    (GOOD + "\n[rules.t]\nkind = \"trend\"\ncode = \"sbp_mmhg\"\nlevel = \"watch\"\n"
     "threshold = 20\ndirection = \"sideways\"\n", "rules.t.direction", "must be one of"),
    (GOOD + "\n[rules.t]\nkind = \"trend\"\ncode = \"sbp_mmhg\"\nlevel = \"watch\"\n"
     "threshold = 20\nop = \"<\"\n", "rules.t.op", "size of the change"),
    (GOOD.replace("clear = 95", "clear = 95\nwindow_h = 12"), "rules.sbp_low.window_h",
     "only trend rules"),
    (GOOD.replace("clear = 95", "clear = 95\nreplaces = [\"sbp_lowest\"]"),
     "rules.sbp_low.replaces", "unknown rule 'sbp_lowest'"),
    ("[rules.sbp_low\n", "not valid TOML", ""),
]


@pytest.mark.parametrize(("text", "key", "message"), BAD)
def test_a_bad_rules_file_stops_create_app_naming_the_key(tmp_path, text, key, message):
    with pytest.raises(rules.RulesError) as info:
        _app(tmp_path, text)
    text_of = str(info.value)
    assert str(tmp_path / "rules.toml") in text_of
    assert key in text_of and message in text_of, text_of


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(rules.RulesError, match="cannot be read"):
        _app(tmp_path, ALERT_RULES_FILE=str(tmp_path / "nope.toml"))


def test_check_rules_command_reports_the_key(tmp_path):
    app = _app(tmp_path, GOOD)
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("threshold = 90", "threshold = true"))
    result = app.test_cli_runner().invoke(args=["alerts", "check-rules", str(bad)])
    assert result.exit_code != 0 and "rules.sbp_low.threshold" in result.output
