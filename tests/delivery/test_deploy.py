"""scripts/deploy.py and scripts/fetch_model.py against a real moto server (ECR, ECS,
CloudFormation, S3) and a real instance of the service for the smoke test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from werkzeug.serving import make_server

from app import create_app
from app.db import init_db
from scripts import deploy
from tests.conftest import ROOT, free_port

REGION = "eu-west-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
               "digest": "sha256:" + "a" * 64},
    "layers": []})


@pytest.fixture(scope="module")
def aws(moto_url: str) -> dict:
    """Clients, plus a cluster, an ECR repository holding one image, a Fargate service."""
    kw = {"region_name": REGION, "endpoint_url": moto_url,
          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    c = {name: boto3.client(name, **kw) for name in ("ecs", "ecr", "ec2", "cloudformation",
                                                     "s3")}
    c["ecs"].create_cluster(clusterName="twin-test")
    repo = c["ecr"].create_repository(repositoryName="ras-twin",
                                      imageTagMutability="IMMUTABLE")["repository"]
    c["ecr"].put_image(repositoryName="ras-twin", imageManifest=MANIFEST, imageTag="sha1")
    first = c["ecs"].register_task_definition(
        family="ras-twin", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu="256", memory="512", containerDefinitions=[{"name": "web", "image": "bootstrap"}],
    )["taskDefinition"]["taskDefinitionArn"]
    vpc = c["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = c["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = c["ec2"].create_security_group(GroupName="twin", Description="twin",
                                        VpcId=vpc)["GroupId"]
    c["ecs"].create_service(
        cluster="twin-test", serviceName="twin-svc", taskDefinition=first, desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet],
                                                      "securityGroups": [sg]}})
    c["image"] = f"{repo['repositoryUri']}:sha1"
    c["first_arn"] = first
    return c


def serve(model_uri: Path, db: Path) -> tuple[object, str]:
    """The real service on a free port (werkzeug, in a thread)."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{db}",
                      "MODEL_URI": str(model_uri)})
    with app.app_context():
        init_db()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def ready_service(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "model").mkdir()
    server, url = serve(tmp_path / "model", tmp_path / "ok.db")
    yield url
    server.shutdown()


@pytest.fixture
def unready_service(tmp_path: Path) -> Iterator[str]:
    server, url = serve(tmp_path / "no-model-here", tmp_path / "bad.db")
    yield url
    server.shutdown()


def stack_vars() -> list[str]:
    values = {"EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/exec",
              "TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/task",
              "SECRET_KEY_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-1",
              "DATABASE_URL_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:d-1",
              "LOG_GROUP": "/ecs/ras-twin", "MODEL_URI": "s3://bucket/models/current",
              "CORS_ORIGINS": ""}
    return [arg for k, v in values.items() for arg in ("--var", f"{k}={v}")]


def run_deploy(moto_url: str, *args: str) -> subprocess.CompletedProcess:
    """scripts/deploy.py as the workflow runs it, against moto."""
    env = {**os.environ, **FAKE_CREDENTIALS}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy.py"), *args, "--region", REGION,
         "--endpoint-url", moto_url],
        capture_output=True, text=True, env=env, timeout=120)


def service(aws: dict) -> dict:
    return aws["ecs"].describe_services(cluster="twin-test", services=["twin-svc"])["services"][0]


def test_deploy_registers_updates_waits_and_smoke_tests(aws, moto_url, ready_service):
    proc = run_deploy(moto_url, "deploy", "--cluster", "twin-test", "--service", "twin-svc",
                      "--image", aws["image"], "--timeout", "30",
                      "--smoke-url", ready_service, *stack_vars())
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    svc = service(aws)
    assert svc["taskDefinition"] == result["taskDefinitionArn"] != aws["first_arn"]
    assert svc["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True, "rollback": True}
    td = aws["ecs"].describe_task_definition(
        taskDefinition=result["taskDefinitionArn"])["taskDefinition"]
    (web,) = td["containerDefinitions"]
    assert web["image"] == aws["image"]
    assert {s["name"] for s in web["secrets"]} == {"SECRET_KEY", "DATABASE_URL"}
    assert "smoke test: " + ready_service + "/readyz answered 200" in proc.stderr


def test_deploy_fails_when_the_smoke_test_fails(aws, moto_url, unready_service):
    proc = run_deploy(moto_url, "deploy", "--cluster", "twin-test", "--service", "twin-svc",
                      "--image", aws["image"], "--timeout", "30", "--smoke-timeout", "3",
                      "--smoke-url", unready_service, *stack_vars())
    assert proc.returncode == 1
    assert "/readyz answered 503" in proc.stderr


def test_deploy_refuses_an_image_missing_from_ecr(aws, moto_url):
    before = service(aws)["taskDefinition"]
    missing = aws["image"].replace(":sha1", ":not-pushed")
    proc = run_deploy(moto_url, "deploy", "--cluster", "twin-test", "--service", "twin-svc",
                      "--image", missing, *stack_vars())
    assert proc.returncode == 1 and "is not in ECR" in proc.stderr
    assert service(aws)["taskDefinition"] == before


def test_rollback_returns_to_the_previous_revision(aws, moto_url, ready_service):
    assert run_deploy(moto_url, "deploy", "--cluster", "twin-test", "--service", "twin-svc",
                      "--image", aws["image"], "--timeout", "30",
                      *stack_vars()).returncode == 0
    current = service(aws)["taskDefinition"]
    proc = run_deploy(moto_url, "rollback", "--cluster", "twin-test", "--service", "twin-svc",
                      "--timeout", "30")
    assert proc.returncode == 0, proc.stderr
    revision = int(current.rsplit(":", 1)[1])
    assert service(aws)["taskDefinition"] == current.rsplit(":", 1)[0] + f":{revision - 1}"


def test_render_takes_the_stack_outputs(aws, moto_url, tmp_path):
    outputs = {"ExecutionRoleArn": "arn:aws:iam::123456789012:role/from-stack-exec",
               "TaskRoleArn": "arn:aws:iam::123456789012:role/from-stack-task",
               "SecretKeyArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s-1",
               "DatabaseUrlArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:d-1",
               "LogGroup": "/ecs/from-stack", "ModelUri": "s3://models/current",
               "CorsOrigins": "https://a.example"}
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    aws["cloudformation"].create_stack(StackName="twin-stack",
                                       TemplateBody=json.dumps(template))
    out = tmp_path / "td.json"
    proc = run_deploy(moto_url, "render", "--stack", "twin-stack", "--image", "img:1",
                      "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    td = json.loads(out.read_text())
    assert td["executionRoleArn"] == outputs["ExecutionRoleArn"]
    (web,) = td["containerDefinitions"]
    assert web["logConfiguration"]["options"]["awslogs-group"] == "/ecs/from-stack"
    assert web["logConfiguration"]["options"]["awslogs-region"] == REGION
    assert {"name": "MODEL_URI", "value": "s3://models/current"} in web["environment"]
    assert "{{" not in out.read_text()


def test_render_names_missing_values(moto_url):
    proc = run_deploy(moto_url, "render", "--image", "img:1", "--var", "LOG_GROUP=x")
    assert proc.returncode == 1
    assert "EXECUTION_ROLE_ARN" in proc.stderr and "TASK_ROLE_ARN" in proc.stderr


def test_check_rollout_fails_after_a_circuit_breaker_rollback(aws):
    desc = service(aws)
    deploy.check_rollout(desc, desc["taskDefinition"])
    with pytest.raises(deploy.DeployError, match="rolled back"):
        deploy.check_rollout(desc, desc["taskDefinition"] + "-newer")
    primary = next(d for d in desc["deployments"] if d["status"] == "PRIMARY")
    primary["rolloutState"] = "FAILED"
    with pytest.raises(deploy.DeployError, match="rollout failed"):
        deploy.check_rollout(desc, desc["taskDefinition"])


def test_fetch_model_downloads_folder_and_file_bundles(aws, moto_url, tmp_path):
    s3 = aws["s3"]
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="models", Key="v3/manifest.json", Body=b'{"version": 3}')
    s3.put_object(Bucket="models", Key="v3/weights/params.pt", Body=b"\x00\x01")
    s3.put_object(Bucket="models", Key="single.pt", Body=b"bundle")
    env = {**os.environ, **FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto_url}
    script = str(ROOT / "scripts" / "fetch_model.py")

    def fetch(uri: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, script, uri, str(tmp_path / "cache")],
                              capture_output=True, text=True, env=env, timeout=60)

    folder = Path(fetch("s3://models/v3").stdout.strip())
    assert (folder / "manifest.json").read_bytes() == b'{"version": 3}'
    assert (folder / "weights" / "params.pt").read_bytes() == b"\x00\x01"
    single = Path(fetch("s3://models/single.pt").stdout.strip())
    assert single.read_bytes() == b"bundle"
    missing = fetch("s3://models/nothing-here")
    assert missing.returncode != 0 and "no model bundle" in missing.stderr
