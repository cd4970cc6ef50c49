"""deploy/lambda/serverless.yml: valid YAML, the seed's layout, and every name it uses exists.

It cannot be deployed from here (no AWS account), so this reads it as the framework and
CloudFormation would: references resolve, artifacts are the ones our builds write, and the
environment variables are ones the agent and the rotation function read.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from secretsd.agent import config as agent_config
from secretsd.agent.config import LAMBDA_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "lambda"))
import build_layer  # noqa: E402
import package  # noqa: E402

SERVERLESS = ROOT / "deploy" / "lambda" / "serverless.yml"
FUNCTIONS = ROOT / "src" / "secretsd" / "rotation" / "functions"


class CloudFormationLoader(yaml.SafeLoader):
    """Serverless accepts CloudFormation's short tags (!Ref, !GetAtt); keep them as data."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    return {suffix: loader.construct_sequence(node)}


CloudFormationLoader.add_multi_constructor("!", _tag)


def load() -> dict:
    return yaml.load(SERVERLESS.read_text(), Loader=CloudFormationLoader)  # noqa: S506


def _references(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.append(value)
            elif key == "Fn::GetAtt":
                found.append(value[0])
            else:
                found += _references(value)
        if "DependsOn" in node:
            found.append(node["DependsOn"])
    elif isinstance(node, list):
        for item in node:
            found += _references(item)
    return found


def _logical_id(function_name: str) -> str:
    # How the framework names a function's resource: "dbRotation" -> "DbRotationLambdaFunction".
    return function_name[0].upper() + function_name[1:] + "LambdaFunction"


def test_seed_layout_php_on_bref_with_the_agent_layer():
    doc = load()
    assert "./vendor/bref/bref" in doc["plugins"]
    api = doc["functions"]["api"]
    assert api["runtime"] == "php-83-fpm"
    assert api["handler"] == "Stellar-Dominion/public/index.php"
    [layer_name] = doc["layers"]
    # The framework's logical id for a layer: TitleCase name + "LambdaLayer".
    assert api["layers"] == [{"Ref": layer_name[0].upper() + layer_name[1:] + "LambdaLayer"}]
    artifact = doc["layers"][layer_name]["package"]["artifact"]
    assert artifact == f"build/lambda/secretsd-agent-layer-{doc['provider']['architecture']}.zip"
    assert doc["layers"][layer_name]["compatibleArchitectures"] == ["x86_64"]
    assert set(build_layer.ARCHES) >= set(doc["layers"][layer_name]["compatibleArchitectures"])


def test_every_reference_resolves():
    doc = load()
    known = set(doc["resources"]["Resources"])
    known |= {_logical_id(name) for name in doc["functions"]}
    known |= {name[0].upper() + name[1:] + "LambdaLayer" for name in doc["layers"]}
    known |= {"AWS::AccountId", "AWS::Region"}
    missing = set(_references(doc)) - known
    assert not missing
    roles = {f.get("role") for f in doc["functions"].values()} - {None}
    assert roles <= known


def test_agent_environment_is_what_the_agent_reads():
    api = load()["functions"]["api"]
    agent_variables = {
        name
        for name in api["environment"]
        if name.startswith(("PARAMETERS_SECRETS_", "SECRETS_MANAGER_", "SSM_PARAMETER_"))
    }
    agent_variables.discard("SECRETS_MANAGER_AGENT_ENDPOINT")  # the PHP client's, not ours
    extra = {
        "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED",
        "SECRETS_MANAGER_TIMEOUT_MILLIS",
        "SSM_PARAMETER_STORE_TIMEOUT_MILLIS",
    }
    assert agent_variables <= set(LAMBDA_VARIABLES) | extra
    assert "AWS_TOKEN" in agent_config.DEFAULT_SSRF_ENV_VARIABLES
    assert api["environment"]["AWS_TOKEN"] == "${self:custom.agentToken}"
    environment = {name: str(value) for name, value in api["environment"].items()}
    lambda_settings = agent_config.from_lambda_environment(environment)
    assert lambda_settings.http_port == 2773


def test_rotation_function_comes_from_our_zip_with_a_role_that_can_rotate():
    doc = load()
    rotation = doc["functions"]["dbRotation"]
    module, _, handler = rotation["handler"].rpartition(".")
    package_name, _, module_name = module.partition(".")
    assert package_name == package.PACKAGE
    source = (FUNCTIONS / f"{module_name}.py").read_text()
    assert re.search(rf"^def {handler}\(", source, re.MULTILINE)
    assert rotation["package"]["artifact"] == "build/lambda/secretsd-rotation-functions-x86_64.zip"
    assert rotation["runtime"].startswith("python3.")
    role = doc["resources"]["Resources"][rotation["role"]]
    actions = {
        action
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert actions >= {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:GetRandomPassword",
    }
    # The application's role only reads.
    app_actions = {
        action
        for statement in doc["provider"]["iam"]["role"]["statements"]
        for action in statement["Action"]
    }
    assert app_actions == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    permission = doc["resources"]["Resources"]["DbRotationSecretsManagerPermission"]
    assert permission["Properties"]["Principal"] == "secretsmanager.amazonaws.com"
