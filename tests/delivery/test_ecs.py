"""ecs/: the task definition (botocore request validation, cfn-lint, the issue's rules) and the
CloudFormation template (cfn-lint, the resources the issue asks for, least privilege)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters
from cfnlint.decode import decode

from scripts import deploy
from tests.conftest import ROOT

TASK_DEF = ROOT / "ecs" / "task-definition.json"
TEMPLATE = ROOT / "ecs" / "cloudformation.yaml"
#: Fargate cpu units -> allowed memory (MiB), from the ECS developer guide.
FARGATE_SIZES = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
}
SAMPLE_VALUES = {
    "IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ras-twin:0123456789abcdef",
    "EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/ras-twin-exec",
    "TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/ras-twin-task",
    "SECRET_KEY_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:twin/key-Ab12Cd",
    "DATABASE_URL_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:twin/db-Ef34Gh",
    "LOG_GROUP": "/ecs/ras-twin",
    "AWS_REGION": "eu-west-1",
    "MODEL_URI": "s3://ras-twin-models-123456789012-eu-west-1/models/current",
    "CORS_ORIGINS": "https://ehr.example.org",
}


def raw_task_def() -> dict:
    return json.loads(TASK_DEF.read_text())


def rendered_task_def() -> dict:
    return deploy.render(raw_task_def(), SAMPLE_VALUES)


def register_shape():
    ecs = boto3.client("ecs", region_name="eu-west-1")
    return ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape


def test_task_definition_passes_botocore_validation():
    shape = register_shape()
    validate_parameters(raw_task_def(), shape)
    validate_parameters(rendered_task_def(), shape)


def test_botocore_validation_rejects_a_broken_task_definition():
    broken = rendered_task_def()
    broken["containerDefinitions"][0]["healthCheck"]["interval"] = "15"  # must be an int
    broken["containerDefinitions"][0]["readOnlyRootFS"] = True  # unknown key
    with pytest.raises(ParamValidationError) as err:
        validate_parameters(broken, register_shape())
    assert "interval" in str(err.value) and "readOnlyRootFS" in str(err.value)


def test_task_definition_follows_the_rules():
    td = raw_task_def()
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc"
    assert int(td["memory"]) in FARGATE_SIZES[int(td["cpu"])]
    (web,) = td["containerDefinitions"]
    assert web["readonlyRootFilesystem"] is True
    assert web.get("privileged", False) is False
    uid = web["user"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert web["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    assert "/tmp" in {m["containerPath"] for m in web["mountPoints"]}
    health = web["healthCheck"]
    assert health["startPeriod"] > 0 and "/healthz" in " ".join(health["command"])
    assert web["logConfiguration"]["logDriver"] == "awslogs"
    secret_names = {s["name"] for s in web["secrets"]}
    assert {"SECRET_KEY", "DATABASE_URL"} <= secret_names
    assert not secret_names & {e["name"] for e in web["environment"]}
    assert web["image"] == "{{IMAGE}}"


def to_cloudformation(node, key: str = ""):
    """A RegisterTaskDefinition body as CloudFormation properties (camelCase -> PascalCase)."""
    if isinstance(node, dict):
        if key == "options":  # awslogs option names stay as they are
            return dict(node)
        return {k[0].upper() + k[1:]: to_cloudformation(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [to_cloudformation(v, key) for v in node]
    return node


def cfn_lint(path: Path, *extra: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run([str(exe), *extra, "--", str(path)], capture_output=True, text=True)


def test_task_definition_passes_cfn_lint_as_a_resource(tmp_path):
    props = to_cloudformation(rendered_task_def())
    template = {"AWSTemplateFormatVersion": "2010-09-09",
                "Resources": {"TaskDefinition": {"Type": "AWS::ECS::TaskDefinition",
                                                 "Properties": props}}}
    path = tmp_path / "task.json"
    path.write_text(json.dumps(template))
    proc = cfn_lint(path)
    assert proc.returncode == 0, proc.stdout
    # the same check notices an impossible Fargate size
    template["Resources"]["TaskDefinition"]["Properties"]["Memory"] = "512"
    path.write_text(json.dumps(template))
    assert "E3047" in cfn_lint(path).stdout


def test_cloudformation_template_is_cfn_lint_clean():
    proc = cfn_lint(TEMPLATE, "--include-checks", "I")
    assert proc.returncode == 0, proc.stdout


@pytest.fixture(scope="module")
def template() -> dict:
    tpl, problems = decode(str(TEMPLATE))
    assert not problems
    return tpl


def resources(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def props(template: dict, kind: str) -> dict:
    (res,) = resources(template, kind).values()
    return res["Properties"]


def test_template_has_the_issue_resources(template):
    repo = props(template, "AWS::ECR::Repository")
    assert repo["ImageTagMutability"] == "IMMUTABLE"
    assert repo["ImageScanningConfiguration"]["ScanOnPush"] is True
    tg = props(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert tg["HealthCheckPath"] == "/readyz" and tg["TargetType"] == "ip"
    listeners = [r["Properties"] for r in
                 resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()]
    assert any(p["Protocol"] == "HTTPS" and p["Port"] == 443 for p in listeners)
    svc = props(template, "AWS::ECS::Service")
    breaker = svc["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
    assert breaker == {"Enable": True, "Rollback": True}
    assert svc["LaunchType"] == "FARGATE"
    container = raw_task_def()["containerDefinitions"][0]["name"]
    assert svc["LoadBalancers"][0]["ContainerName"] == container
    assert props(template, "AWS::ApplicationAutoScaling::ScalingPolicy")["PolicyType"] == \
        "TargetTrackingScaling"
    assert resources(template, "AWS::S3::Bucket") and resources(template, "AWS::Logs::LogGroup")
    (db,) = resources(template, "AWS::RDS::DBInstance").values()
    assert db["Condition"] == "CreateDatabase" and db["Properties"]["Engine"] == "postgres"
    assert db["Properties"]["StorageEncrypted"] is True
    assert resources(template, "AWS::IAM::OIDCProvider")


def test_deploy_role_trusts_only_the_production_environment_of_one_repo(template):
    role = template["Resources"]["DeployRole"]["Properties"]
    (stmt,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
    cond = stmt["Condition"]["StringEquals"]
    assert cond["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert cond["token.actions.githubusercontent.com:sub"] == {
        "Fn::Sub": "repo:${GitHubRepository}:environment:production"}


def policy_statements(template: dict):
    for name, res in resources(template, "AWS::IAM::Role").items():
        for policy in res["Properties"].get("Policies", []):
            for stmt in policy["PolicyDocument"]["Statement"]:
                yield name, stmt


def test_roles_are_least_privilege(template):
    star_ok = {"ecr:GetAuthorizationToken", "ecs:DescribeTaskDefinition",
               "ecs:ListTaskDefinitions", "ecs:RegisterTaskDefinition"}
    for role, stmt in policy_statements(template):
        actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        assert not any(a.endswith("*") for a in actions), (role, actions)
        if stmt["Resource"] == "*":
            assert set(actions) <= star_ok, (role, actions)
    task_actions = {a for role, s in policy_statements(template) if role == "TaskRole"
                    for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert task_actions == {"s3:ListBucket", "s3:GetObject"}
    assert not resources(template, "AWS::IAM::User")


def test_stack_outputs_fill_every_placeholder(template):
    placeholders = set(deploy.PLACEHOLDER.findall(TASK_DEF.read_text()))
    outputs = {deploy.snake_upper(k) for k in template["Outputs"]}
    assert placeholders - outputs == {"IMAGE", "AWS_REGION"}
    assert {"CLUSTER_NAME", "SERVICE_NAME", "SERVICE_URL"} <= outputs
    family = raw_task_def()["family"]
    assert template["Parameters"]["AppName"]["Default"] == family
    assert re.fullmatch(r"\{\{[A-Z_]+\}\}", raw_task_def()["executionRoleArn"])
