"""One configuration module: the README's table is ``ENV_VARS``, and only ``app/config.py``
reads the environment."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app import config

ROOT = Path(__file__).resolve().parents[2]


def _readme_table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `([A-Z0-9_]+)` \| .* \| (.+) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2).strip()
    return rows


def _shown(default: str | None) -> str:
    return "none" if default is None else f"`{default.format(instance='instance')}`"


def test_readme_lists_exactly_the_variables_of_env_vars_with_their_defaults():
    assert _readme_table() == {name: _shown(v.default) for name, v in config.ENV_VARS.items()}


def _reads_environment(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and (
                {a.name for a in node.names} & {"environ", "getenv", "environb"}):
            lines.append(node.lineno)
    return lines


def test_only_config_reads_the_environment():
    readers = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        if path == ROOT / "app" / "config.py":
            continue
        lines = _reads_environment(ast.parse(path.read_text()))
        if lines:
            readers[str(path.relative_to(ROOT))] = lines
    assert readers == {}


def test_env_falls_back_to_the_documented_default(monkeypatch):
    monkeypatch.delenv("CACHE_SIZE", raising=False)
    assert config.env("CACHE_SIZE") == "512"
    monkeypatch.setenv("CACHE_SIZE", "")
    assert config.env("CACHE_SIZE") == "512"
    monkeypatch.setenv("CACHE_SIZE", "7")
    assert config.from_environment("/tmp/x")["CACHE_SIZE"] == 7
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert config.from_environment("/tmp/x")["DATABASE_URL"] == "sqlite:////tmp/x/twin.db"
