#!/usr/bin/env python3
"""Manual deploy to ECS Fargate: what .github/workflows/deploy.yml does after the image push.

Subcommands (all take ``--region``, ``--endpoint-url`` for a local emulator such as moto):

- ``render``: fill ``ecs/task-definition.json``'s ``{{PLACEHOLDERS}}`` (the image, and the
  CloudFormation stack's outputs: ``ExecutionRoleArn`` fills ``{{EXECUTION_ROLE_ARN}}``...)
  and print or write the task definition;
- ``deploy``: render, register the task definition, point the service at it (deployment
  circuit breaker with rollback on), wait until the service is stable, check that the new
  revision is the one running (a rolled-back deployment fails), then smoke-test the URL;
- ``smoke``: GET /healthz and /readyz on a service URL until both answer 200;
- ``rollback``: point the service back at the previous revision of the family and wait.

Example: ``python scripts/deploy.py deploy --stack ras-twin --image REPO:SHA --smoke-url URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "ecs" / "task-definition.json"
PLACEHOLDER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
#: Fields of a described task definition that RegisterTaskDefinition does not accept.
READ_ONLY_FIELDS = {"taskDefinitionArn", "revision", "status", "requiresAttributes",
                    "compatibilities", "registeredAt", "registeredBy", "deregisteredAt"}


class DeployError(RuntimeError):
    """A deploy step failed; the message says which and why."""


# --- render -----------------------------------------------------------------------------


def snake_upper(name: str) -> str:
    """``ExecutionRoleArn`` -> ``EXECUTION_ROLE_ARN`` (stack output key to placeholder)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def stack_outputs(cfn, stack: str) -> dict[str, str]:
    """A CloudFormation stack's outputs as placeholder values."""
    desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {snake_upper(o["OutputKey"]): o["OutputValue"] for o in desc.get("Outputs", [])}


def render(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Replace every ``{{NAME}}`` in string values; raises when one has no value."""
    missing: set[str] = set()

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        if isinstance(node, str):
            def sub(match: re.Match) -> str:
                if match.group(1) not in values:
                    missing.add(match.group(1))
                    return match.group(0)
                return values[match.group(1)]
            return PLACEHOLDER.sub(sub, node)
        return node

    rendered = fill(template)
    if missing:
        raise DeployError(f"no value for {', '.join(sorted(missing))} "
                          "(give --var NAME=VALUE or --stack with those outputs)")
    return rendered


def container_images(task_def: dict[str, Any]) -> dict[str, str]:
    """Container name -> image of a task definition."""
    return {c["name"]: c["image"] for c in task_def["containerDefinitions"]}


# --- AWS --------------------------------------------------------------------------------


def clients(region: str, endpoint_url: str | None) -> dict[str, Any]:
    """boto3 clients for ECS, CloudFormation and ECR (an emulator when endpoint_url is set)."""
    import boto3  # imported here so `render --var` works without boto3

    session = boto3.session.Session(region_name=region)
    return {name: session.client(name, endpoint_url=endpoint_url)
            for name in ("ecs", "cloudformation", "ecr")}


def register(ecs, task_def: dict[str, Any]) -> str:
    """Register the task definition; returns its ARN (family:revision)."""
    body = {k: v for k, v in task_def.items() if k not in READ_ONLY_FIELDS}
    return ecs.register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"]


def update_service(ecs, cluster: str, service: str, task_def_arn: str) -> None:
    """Roll the service to ``task_def_arn`` with the circuit breaker (and rollback) on."""
    ecs.update_service(
        cluster=cluster, service=service, taskDefinition=task_def_arn,
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200, "minimumHealthyPercent": 100,
        },
    )


def wait_stable(ecs, cluster: str, service: str, timeout_s: int) -> None:
    """Block until ECS reports the service stable (one deployment, desired = running)."""
    from botocore.exceptions import WaiterError

    delay = 15 if timeout_s >= 60 else 2
    try:
        ecs.get_waiter("services_stable").wait(
            cluster=cluster, services=[service],
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, timeout_s // delay)},
        )
    except WaiterError as err:
        raise DeployError(f"service {service} not stable within {timeout_s} s: {err}") from err


def check_rollout(service_desc: dict[str, Any], task_def_arn: str) -> None:
    """Raise when the service does not run ``task_def_arn`` or its primary rollout failed.

    After a circuit-breaker rollback the service is stable again but on the old revision
    (its ``taskDefinition`` is the primary deployment's): a failed deploy, even though the
    stability waiter succeeded.
    """
    primary = next((d for d in service_desc.get("deployments", [])
                    if d.get("status") == "PRIMARY"), {})
    if primary.get("rolloutState") == "FAILED":
        raise DeployError(f"rollout failed: {primary.get('rolloutStateReason', '')}")
    if service_desc["taskDefinition"] != task_def_arn:
        raise DeployError(f"service runs {service_desc['taskDefinition']}, not {task_def_arn} "
                          "(the circuit breaker rolled back?)")


def describe_service(ecs, cluster: str, service: str) -> dict[str, Any]:
    """The service's description; raises when it does not exist."""
    found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if not found or found[0].get("status") == "INACTIVE":
        raise DeployError(f"service {service} not found in cluster {cluster}")
    return found[0]


def check_image_in_ecr(ecr, image: str) -> None:
    """When ``image`` is an ECR URI, raise unless that tag exists in the repository."""
    match = re.match(r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/([^:@]+):(.+)$", image)
    if not match:
        return
    repo, tag = match.groups()
    try:
        ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": tag}])
    except Exception as err:  # botocore ClientError: ImageNotFound / RepositoryNotFound
        raise DeployError(f"image {image} is not in ECR: {err}") from err


def previous_revision(ecs, current_arn: str) -> str:
    """The ACTIVE revision of the same family just before ``current_arn``."""
    family = current_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    revision = int(current_arn.rsplit(":", 1)[-1])
    pages = ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=family, status="ACTIVE", sort="DESC")
    arns = [arn for page in pages for arn in page["taskDefinitionArns"]]
    older = [a for a in arns if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family
             and int(a.rsplit(":", 1)[-1]) < revision]
    if not older:
        raise DeployError(f"no revision of {family} older than {revision}")
    return max(older, key=lambda a: int(a.rsplit(":", 1)[-1]))


# --- smoke test -------------------------------------------------------------------------


def get_status(url: str, timeout: float = 5.0) -> int:
    """HTTP status of a GET (0 when the server does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return 0


def smoke(base_url: str, timeout_s: float = 120.0, paths=("/healthz", "/readyz")) -> None:
    """Poll each path until it answers 200; raises after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    for path in paths:
        url = base_url.rstrip("/") + path
        while (status := get_status(url)) != 200:
            if time.monotonic() > deadline:
                raise DeployError(f"smoke test: {url} answered {status or 'nothing'}")
            time.sleep(2)
        log(f"smoke test: {url} answered 200")


# --- command line -----------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[deploy] {message}", file=sys.stderr, flush=True)


def placeholder_values(args: argparse.Namespace, outputs: dict[str, str]) -> dict[str, str]:
    """Values for the template: stack outputs, then AWS_REGION and IMAGE, then --var."""
    values = dict(outputs)
    values["AWS_REGION"] = args.region
    if args.image:
        values["IMAGE"] = args.image
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep:
            raise DeployError(f"--var wants NAME=VALUE, got {item!r}")
        values[name] = value
    return values


def outputs_of(args: argparse.Namespace, aws: dict[str, Any] | None) -> dict[str, str]:
    """The ``--stack``'s outputs as placeholder names (empty without ``--stack``)."""
    return stack_outputs(aws["cloudformation"], args.stack) if args.stack else {}


def resolve_service(args: argparse.Namespace, outputs: dict[str, str]) -> tuple[str, str]:
    """``(cluster, service)``: the options, else the stack's outputs, else ``ras-twin``."""
    cluster = args.cluster or outputs.get("CLUSTER_NAME") or "ras-twin"
    service = args.service or outputs.get("SERVICE_NAME") or "ras-twin"
    return cluster, service


def cmd_render(args: argparse.Namespace) -> dict[str, Any]:
    aws = clients(args.region, args.endpoint_url) if args.stack else None
    values = placeholder_values(args, outputs_of(args, aws))
    task_def = render(json.loads(args.template.read_text()), values)
    text = json.dumps(task_def, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return task_def


def cmd_deploy(args: argparse.Namespace) -> None:
    aws = clients(args.region, args.endpoint_url)
    outputs = outputs_of(args, aws)
    cluster, service = resolve_service(args, outputs)
    smoke_url = args.smoke_url or outputs.get("SERVICE_URL")
    task_def = render(json.loads(args.template.read_text()), placeholder_values(args, outputs))
    for image in container_images(task_def).values():
        check_image_in_ecr(aws["ecr"], image)
    describe_service(aws["ecs"], cluster, service)
    arn = register(aws["ecs"], task_def)
    log(f"registered {arn}")
    update_service(aws["ecs"], cluster, service, arn)
    log(f"updated {cluster}/{service}; waiting for a stable service")
    wait_stable(aws["ecs"], cluster, service, args.timeout)
    check_rollout(describe_service(aws["ecs"], cluster, service), arn)
    log(f"service stable on {arn}")
    if smoke_url:
        smoke(smoke_url, args.smoke_timeout)
    print(json.dumps({"taskDefinitionArn": arn, "cluster": cluster, "service": service,
                      "images": container_images(task_def), "url": smoke_url}))


def cmd_smoke(args: argparse.Namespace) -> None:
    smoke(args.url, args.smoke_timeout)


def cmd_rollback(args: argparse.Namespace) -> None:
    aws = clients(args.region, args.endpoint_url)
    cluster, service = resolve_service(args, outputs_of(args, aws))
    current = describe_service(aws["ecs"], cluster, service)["taskDefinition"]
    target = args.to or previous_revision(aws["ecs"], current)
    log(f"rolling {service} back from {current} to {target}")
    update_service(aws["ecs"], cluster, service, target)
    wait_stable(aws["ecs"], cluster, service, args.timeout)
    check_rollout(describe_service(aws["ecs"], cluster, service), target)
    print(json.dumps({"taskDefinitionArn": target, "previous": current}))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--region", default=os.environ.get("AWS_REGION", "eu-west-1"))
    common.add_argument("--endpoint-url", help="AWS endpoint (e.g. a moto server)")
    render_opts = argparse.ArgumentParser(add_help=False)
    render_opts.add_argument("--template", type=Path, default=TEMPLATE)
    render_opts.add_argument("--image", help="image URI for {{IMAGE}} (REPO:GIT_SHA)")
    render_opts.add_argument("--stack", help="CloudFormation stack whose outputs fill the rest")
    render_opts.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    service_opts = argparse.ArgumentParser(add_help=False)
    service_opts.add_argument("--cluster", help="default: the stack's ClusterName, or ras-twin")
    service_opts.add_argument("--service", help="default: the stack's ServiceName, or ras-twin")
    service_opts.add_argument("--timeout", type=int, default=900, help="seconds to stability")
    smoke_opts = argparse.ArgumentParser(add_help=False)
    smoke_opts.add_argument("--smoke-timeout", type=float, default=120.0)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("render", parents=[common, render_opts])
    p.add_argument("--out", type=Path)
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("deploy", parents=[common, render_opts, service_opts, smoke_opts])
    p.add_argument("--smoke-url", help="service URL to smoke-test (default: stack's ServiceUrl)")
    p.set_defaults(func=cmd_deploy)
    p = sub.add_parser("smoke", parents=[smoke_opts])
    p.add_argument("--url", required=True)
    p.set_defaults(func=cmd_smoke)
    p = sub.add_parser("rollback", parents=[common, service_opts])
    p.add_argument("--stack", help="CloudFormation stack naming the cluster and service")
    p.add_argument("--to", help="task definition ARN (default: the previous revision)")
    p.set_defaults(func=cmd_rollback)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        args.func(args)
    except DeployError as err:
        log(f"FAILED: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
