#!/usr/bin/env python3
"""Build the real Dockerfile with podman, run the image and check it like a deploy would.

On a machine without Docker or a registry (see docs/deployment.md, "Rehearsing locally"):

1. podman is configured through a containers.conf and storage.conf in a cache folder outside
   the repository (runc runtime, ulimits the host allows, image storage kept between runs);
2. a stand-in ``python:3.11-slim`` base is built once with debootstrap (cached); it carries
   the host's CA bundle and a pip.conf naming the host's local wheel folders;
3. the unchanged Dockerfile is built with ``--pull=never``; torch comes from the local CPU
   wheel folder pip is configured with (``pip config list``), mounted into the build, instead
   of the PyTorch CPU index the Dockerfile names by default;
4. the image runs with a read-only root filesystem; the check waits for the image's own
   HEALTHCHECK to pass, calls /healthz, /readyz and a forecast, and checks the service
   runs as a non-root user.

Prints one JSON report (image size in MB, build time, time to healthy in s, each check).
Exit status 0 when every check passed. Usage: ``python scripts/container_check.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "docker.io/library/python:3.11-slim"
IMAGE = "localhost/ras-twin:check"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = "python3,python3-pip,python3-venv,ca-certificates"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CONTAINER_PORT = 8000


def default_cache_dir() -> Path:
    """Cache of podman storage and the stand-in base (outside the repository)."""
    env = os.environ.get("CONTAINER_CHECK_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", "/var/tmp")) / "ras-twin-container-check"


def log(message: str) -> None:
    """Progress on stderr (stdout carries the JSON report)."""
    print(f"[container-check] {message}", file=sys.stderr, flush=True)


# --- podman configuration ---------------------------------------------------------------


def podman_env(cache: Path) -> dict[str, str]:
    """Environment pointing podman at a containers.conf and storage.conf under ``cache``."""
    conf_dir = cache / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    containers_conf = conf_dir / "containers.conf"
    containers_conf.write_text(
        "[containers]\n"
        'default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )
    storage_conf = conf_dir / "storage.conf"
    storage_conf.write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{cache / "storage"}"\n'
        f'runroot = "{cache / "run"}"\n'
    )
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(containers_conf)
    env["CONTAINERS_STORAGE_CONF"] = str(storage_conf)
    return env


def podman(env: dict[str, str], *args: str, check: bool = True, capture: bool = True,
           timeout: float | None = None, input_bytes: bytes | None = None
           ) -> subprocess.CompletedProcess:
    """Run ``podman ARGS`` with the check's configuration."""
    return subprocess.run(
        ["podman", *args], env=env, check=check, timeout=timeout, input=input_bytes,
        stdout=subprocess.PIPE if capture else sys.stderr,
        stderr=subprocess.PIPE if capture else None,
    )


# --- stand-in base image ----------------------------------------------------------------


def _fix_rootfs(rootfs: Path) -> None:
    """Make the debootstrap tree look like python:3.11-slim (python/pip on PATH, CA bundle)."""
    local_bin = rootfs / "usr/local/bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    for name, target in {"python": "/usr/bin/python3", "python3": "/usr/bin/python3",
                         "pip": "/usr/bin/pip3", "pip3": "/usr/bin/pip3"}.items():
        link = local_bin / name
        if not link.is_symlink():
            link.symlink_to(target)
    # Outbound HTTPS from the build goes through an intercepting proxy: trust the host's CAs.
    if HOST_CA_BUNDLE.is_file():
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    # pip inside the build uses the host's local wheel folders (mounted at the same paths).
    indexes, folders = local_pip_sources()
    links = [str(f) for f in folders if not (f / "simple").is_dir()]
    (rootfs / "etc/pip.conf").write_text(
        "[global]\n"
        f"cert = {HOST_CA_BUNDLE}\n"
        f"find-links = {' '.join(links)}\n"
        f"extra-index-url = {' '.join(indexes)}\n"
    )
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)


def pull_base(env: dict[str, str]) -> float:
    """Pull the real base image (machines that reach Docker Hub); returns seconds spent."""
    start = time.monotonic()
    podman(env, "pull", "--quiet", BASE_IMAGE, capture=False)
    return time.monotonic() - start


def ensure_base(env: dict[str, str], cache: Path) -> float:
    """Build and import the stand-in base unless it exists; returns seconds spent."""
    if podman(env, "image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return 0.0
    if not shutil.which("debootstrap"):
        raise SystemExit("debootstrap is missing (run .ci/setup.d/40-podman.sh)")
    start = time.monotonic()
    rootfs = cache / "rootfs"
    done = cache / "rootfs.done"
    if not done.exists():
        shutil.rmtree(rootfs, ignore_errors=True)
        log("debootstrap of the stand-in base (about a minute, cached afterwards)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}",
             "bookworm", str(rootfs), DEBIAN_MIRROR],
            check=True, stdout=subprocess.DEVNULL,
        )
        _fix_rootfs(rootfs)
        done.touch()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["podman", "import", "--change", 'CMD ["python3"]',
         "--change", "ENV LANG=C.UTF-8", "-", BASE_IMAGE],
        env=env, stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL,
    )
    if tar.wait() != 0:
        raise RuntimeError("tar of the stand-in rootfs failed")
    return time.monotonic() - start


# --- pip's local wheel sources ----------------------------------------------------------


def local_pip_sources() -> tuple[list[str], list[Path]]:
    """``(index_urls, folders)``: the local ``file://`` indexes and find-links pip uses here.

    Read from ``pip config list`` and the PIP_* environment; only local folders count
    (they are mounted read-only into the build at the same paths).
    """
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                         capture_output=True, text=True, check=False).stdout
    values: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.split(".")[-1] in {"find-links", "extra-index-url", "index-url"}:
            values += value.strip().strip("'\"").split()
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        values += os.environ.get(var, "").split()
    indexes: list[str] = []
    folders: list[Path] = []
    for value in dict.fromkeys(values):
        path = Path(value.removeprefix("file://"))
        if value.startswith("file://") and path.is_dir():
            indexes.append(value)
            # an index's links are relative (../../files/...): mount its parent folder
            folders.append(path.parent if path.name == "simple" else path)
        elif value.startswith("/") and path.is_dir():
            folders.append(path)
    return indexes, folders


# --- build, run, probe ------------------------------------------------------------------


def build_image(env: dict[str, str], tag: str, bundle: str = "smoke") -> float:
    """Build the Dockerfile with pip pointed at the local wheels; returns seconds.

    ``bundle``: "smoke" bakes scripts/smoke_bundle.py's quick bundle, "default" the
    Dockerfile's default (the service's default bundle, slow to train).
    """
    indexes, folders = local_pip_sources()
    args = ["build", "--pull=never", "--format", "docker", "--network", "host",
            "-t", tag, "-f", str(ROOT / "Dockerfile")]
    for folder in folders:
        args += ["-v", f"{folder}:{folder}:ro"]
    if HOST_CA_BUNDLE.is_file():
        args += ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    if indexes:
        # torch: the local CPU wheel instead of download.pytorch.org (unreachable here)
        args += ["--build-arg", f"TORCH_INDEX_URL={indexes[0]}"]
    if bundle == "smoke":
        # a bundle that builds in about 2 CPU-minutes (the default one takes many)
        args += ["--build-arg", "MODEL_BUILDER=scripts/smoke_bundle.py",
                 "--build-arg", "MODEL_BUILD_ARGS=--patients 8"]
    args.append(str(ROOT))
    # untag first: a build that stops early must not leave the previous image under the tag
    podman(env, "untag", tag, check=False)
    start = time.monotonic()
    log("podman build " + " ".join(args[1:]))
    podman(env, *args, capture=False)
    return time.monotonic() - start


def prune(env: dict[str, str]) -> None:
    """Drop the buildah working containers interrupted builds left in the check's own storage.

    Images stay: podman's build cache is its intermediate images (``image prune`` would
    make the next build start from scratch)."""
    leftovers = podman(env, "ps", "--all", "--external", "--quiet",
                       "--filter", "status=unknown", check=False).stdout.decode().split()
    external = podman(env, "ps", "--all", "--external", "--format", "{{.ID}} {{.Names}}",
                      check=False).stdout.decode().splitlines()
    leftovers += [line.split()[0] for line in external if line.endswith("working-container")
                  or "working-container-" in line]
    if leftovers:
        podman(env, "rm", "--force", *dict.fromkeys(leftovers), check=False)


def free_port() -> int:
    """A TCP port free on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: Any = None, token: str | None = None,
         timeout: float = 10.0) -> tuple[int, Any]:
    """One HTTP request; returns ``(status, parsed JSON or text)``."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")[:500]


def run_container(env: dict[str, str], tag: str, name: str, port: int) -> float:
    """Start the image read-only like ECS would; returns the monotonic start time."""
    podman(env, "rm", "-f", "--ignore", name, check=False)
    start = time.monotonic()
    podman(env, "run", "-d", "--name", name, "--read-only",
           "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}",
           "-e", "SECRET_KEY=container-check-only", "-e", "WEB_CONCURRENCY=2",
           "-e", "GUNICORN_THREADS=2", "--cap-drop", "ALL", "--security-opt",
           "no-new-privileges", tag)
    return start


def wait_healthy(env: dict[str, str], name: str, start: float, limit_s: float) -> float:
    """Run the image's own HEALTHCHECK until it passes; returns seconds since start."""
    while time.monotonic() - start < limit_s:
        state = podman(env, "inspect", "--format", "{{.State.Running}}", name,
                       check=False).stdout.decode().strip()
        if state == "false":
            raise RuntimeError("container exited before becoming healthy")
        if podman(env, "healthcheck", "run", name, check=False).returncode == 0:
            return time.monotonic() - start
        time.sleep(0.25)
    raise RuntimeError(f"not healthy within {limit_s:.0f} s")


def exec_in(env: dict[str, str], name: str, *cmd: str) -> str:
    """Output of a command run inside the container (as the image's user)."""
    return podman(env, "exec", name, *cmd).stdout.decode()


def check_user(env: dict[str, str], name: str) -> dict[str, Any]:
    """The server's PID 1 and every process run with a non-zero uid."""
    status = exec_in(env, name, "cat", "/proc/1/status")
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    uids = [int(x) for x in uid_line.split()[1:]]
    cmdline = exec_in(env, name, "cat", "/proc/1/cmdline").replace("\0", " ").strip()
    return {"ok": all(uid != 0 for uid in uids), "pid1_uids": uids, "pid1_cmdline": cmdline}


def check_read_only(env: dict[str, str], name: str) -> dict[str, Any]:
    """The root filesystem refuses writes; /tmp and the instance folder accept them."""
    root = podman(env, "exec", name, "sh", "-c", "touch /app/probe", check=False)
    tmp = podman(env, "exec", name, "sh", "-c", "touch /tmp/probe && rm /tmp/probe",
                 check=False)
    inst = podman(env, "exec", name, "sh", "-c",
                  "touch /app/instance/probe && rm /app/instance/probe", check=False)
    return {"ok": root.returncode != 0 and tmp.returncode == 0 and inst.returncode == 0,
            "root_writable": root.returncode == 0, "tmp_writable": tmp.returncode == 0,
            "instance_writable": inst.returncode == 0}


def check_probe(base: str, path: str) -> dict[str, Any]:
    """GET a probe; ok when it answers 200."""
    status, body = http("GET", base + path)
    return {"ok": status == 200, "status": status, "body": body}


# --- the forecast step (wired to the API on main by the lead) ----------------------------


def create_token(env: dict[str, str], name: str) -> str | None:
    """A read/write API token from ``flask create-token`` inside the container, if it exists."""
    proc = podman(env, "exec", name, "flask", "--app", "app", "create-token",
                  "container-check", "--scopes", "read,write", check=False)
    lines = proc.stdout.decode().strip().splitlines()
    return lines[-1].strip() if proc.returncode == 0 and lines else None


def check_forecast(env: dict[str, str], name: str, base: str) -> dict[str, Any]:
    """Drive the model through the API as an integrator would (the lead wires the final calls).

    With a read/write token from ``flask create-token``: admit a patient, record two blood
    pressures, GET its forecast (24 h), and run the stateless ``POST /api/v1/simulate``.
    Returns ``{"ok": bool, "available": bool, ...}``; ``available`` is False when the image
    has no such API (no create-token command or 404 on the routes).
    """
    token = create_token(env, name)
    if token is None:
        return {"ok": False, "available": False, "reason": "no create-token command"}
    api = base + "/api/v1"
    status, patient = http("POST", api + "/patients", {"age": 62}, token=token)
    if status == 404:
        return {"ok": False, "available": False, "status": status}
    result: dict[str, Any] = {"available": True, "create_patient": status}
    if status != 201:
        return {**result, "ok": False, "body": patient}
    pid = patient["id"]
    now = time.time()
    stamps = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - h * 3600)) for h in (6, 1)]
    obs = [{"time": t, "code": code, "value": value, "unit": "mm[Hg]"}
           for t in stamps for code, value in (("sbp_mmhg", 152.0), ("dbp_mmhg", 94.0))]
    status, _ = http("POST", f"{api}/patients/{pid}/observations",
                     {"observations": obs}, token=token)
    result["observations"] = status
    start = time.monotonic()
    status, fc = http("GET", f"{api}/patients/{pid}/forecast?horizon_h=24", token=token,
                      timeout=120)
    result["forecast"] = status
    result["forecast_s"] = round(time.monotonic() - start, 2)
    sbp = (fc.get("endpoints", {}).get("sbp_mmhg", {}) if isinstance(fc, dict) else {})
    result["forecast_sbp_median_mmhg"] = [round(v, 1) for v in sbp.get("median", [])[-1:]]
    result["model_version"] = fc.get("model_version") if isinstance(fc, dict) else None
    status, sim = http("POST", api + "/simulate", {"horizon_h": 24}, token=token, timeout=120)
    result["simulate"] = status
    ok = (result["observations"] == 201 and result["forecast"] == 200 and status == 200
          and bool(sbp.get("median")) and all(50 < v < 260 for v in sbp["median"]))
    if not ok:
        result["body"] = fc if result["forecast"] != 200 else sim
    return {**result, "ok": ok}


# --- report -----------------------------------------------------------------------------


def image_size_mb(env: dict[str, str], ref: str) -> float:
    """Uncompressed image size in MB (10^6 bytes), as ``podman images`` counts it."""
    size = podman(env, "image", "inspect", "--format", "{{.Size}}", ref).stdout.decode()
    return round(int(size.strip()) / 1e6, 1)


def image_config(env: dict[str, str], ref: str) -> dict[str, Any]:
    """User, healthcheck and entrypoint as built (docker format keeps HEALTHCHECK)."""
    raw = podman(env, "image", "inspect", ref).stdout.decode()
    info = json.loads(raw)[0]
    cfg = info.get("Config", {})
    return {"user": cfg.get("User"), "healthcheck": info.get("Healthcheck"),
            "entrypoint": cfg.get("Entrypoint"), "cmd": cfg.get("Cmd")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--tag", default=IMAGE)
    parser.add_argument("--base", choices=["standin", "pull"],
                        default=os.environ.get("CONTAINER_CHECK_BASE", "standin"),
                        help="stand-in base from debootstrap (default) or pull the real one")
    parser.add_argument("--bundle", choices=["smoke", "default"],
                        default=os.environ.get("CONTAINER_CHECK_BUNDLE", "smoke"),
                        help="model bundle baked into the image (smoke: quick to build)")
    parser.add_argument("--healthy-limit", type=float, default=120.0,
                        help="give up waiting for healthy after this many seconds")
    parser.add_argument("--require-forecast", action="store_true",
                        help="fail when the image has no forecast API")
    parser.add_argument("--keep", action="store_true", help="leave the container running")
    return parser.parse_args(argv)


def run_checks(env: dict[str, str], args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Start the container and fill ``report`` with each check."""
    name = f"ras-twin-check-{os.getpid()}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    report["container"] = name
    start = run_container(env, args.tag, name, port)
    try:
        report["time_to_healthy_s"] = round(
            wait_healthy(env, name, start, args.healthy_limit), 2)
        checks = report["checks"]
        checks["healthz"] = check_probe(base, "/healthz")
        checks["readyz"] = check_probe(base, "/readyz")
        checks["forecast"] = check_forecast(env, name, base)
        if not args.require_forecast and not checks["forecast"]["available"]:
            checks["forecast"]["ok"] = None  # not judged: the image has no forecast API
        checks["non_root"] = check_user(env, name)
        checks["read_only_root"] = check_read_only(env, name)
    finally:
        report["logs_tail"] = podman(env, "logs", "--tail", "30", name,
                                     check=False).stderr.decode()[-3000:]
        if not args.keep:
            podman(env, "rm", "-f", name, check=False)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cache = args.cache_dir.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    env = podman_env(cache)
    env.setdefault("TMPDIR", tempfile.gettempdir())
    report: dict[str, Any] = {"image": args.tag, "cache_dir": str(cache), "checks": {}}
    try:
        report["base"] = args.base
        seconds = pull_base(env) if args.base == "pull" else ensure_base(env, cache)
        report["base_prepare_s"] = round(seconds, 1)
        report["bundle"] = args.bundle
        report["build_s"] = round(build_image(env, args.tag, args.bundle), 1)
        prune(env)
        report["image_size_mb"] = image_size_mb(env, args.tag)
        report["base_size_mb"] = image_size_mb(env, BASE_IMAGE)
        report["image_config"] = image_config(env, args.tag)
        run_checks(env, args, report)
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        report["error"] = str(err)
    report["ok"] = "error" not in report and all(
        c["ok"] is not False for c in report["checks"].values())
    print(json.dumps(report, indent=2, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
