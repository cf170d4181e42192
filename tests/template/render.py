"""Renders template.yaml offline: the SAM transform (aws-sam-translator, as CloudFormation runs it), then
the intrinsic functions the template uses, resolved for given parameter values, so that the IAM policies
can be measured and audited as IAM will see them.

Only what the template needs is resolved; anything else raises, so a new intrinsic cannot slip past the
size checks unmeasured. Physical ids of the stack's own resources are stand-ins of realistic length.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
STACK = "shipshape"

NO_VALUE = object()

# IAM's limits (IAM and AWS STS quotas): all inline policies of one role together, whitespace not counted,
# and one managed policy; Lambda's limit on a function's environment variables (keys and values).
INLINE_LIMIT = 10_240
MANAGED_LIMIT = 6_144
ENVIRONMENT_LIMIT = 4 * 1024


def template_path() -> Path:
    """The template under test: template.yaml, or the one SHIPSHAPE_TEMPLATE names (a packaged bundle's)."""
    return Path(os.environ.get("SHIPSHAPE_TEMPLATE") or ROOT / "template.yaml").resolve()


def load(path: Path | None = None) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse((path or template_path()).read_text())


def names(prefix: str, count: int, length: int) -> list[str]:
    """`count` distinct names of exactly `length` characters: prefix-...-nn."""
    out = []
    for i in range(count):
        tail = f"-{i + 1:02d}"
        out.append((prefix + "-" + "x" * length)[: length - len(tail)] + tail)
    return out


def parameters(template: dict[str, Any], **given: Any) -> dict[str, Any]:
    """Every parameter's value: `given`, else its default; lists as lists."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        value = given.get(name, spec.get("Default"))
        if value is None:
            raise KeyError(f"parameter {name} has no default and no value")
        if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
            value = value.split(",")
        values[name] = value
    unknown = set(given) - set(values)
    if unknown:
        raise KeyError(f"not parameters of the template: {sorted(unknown)}")
    return values


def transform(template: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The SAM transform, offline. Local code and definition paths become S3 stand-ins, as `sam deploy`
    would upload them; AWS managed policies are looked up in a stub (none is named by the template)."""
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    for logical_id, resource in sam["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://shipshape-artifacts/{logical_id}.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["DefinitionUri"] = f"s3://shipshape-artifacts/{logical_id}.asl.json"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    translator = Translator(managed_policy_map={}, sam_parser=Parser())
    return translator.translate(
        sam_template=sam,
        parameter_values={**params, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION},
        get_managed_policy_map=lambda: {},
    )


class Resolver:
    """Resolves the intrinsic functions of a CloudFormation template for given parameter values."""

    def __init__(self, template: dict[str, Any], params: dict[str, Any]) -> None:
        self.template = template
        self.params = params
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::StackName": STACK,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}

    # -- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def exists(self, logical_id: str) -> bool:
        cond = self.template["Resources"][logical_id].get("Condition")
        return cond is None or self.condition(cond)

    # -- physical ids and attributes of the stack's resources
    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        resource = self.template["Resources"].get(name)
        if resource is None:
            raise KeyError(f"Ref to unknown {name}")
        if not self.exists(name):
            raise ValueError(f"Ref to {name}, which its condition leaves out")
        physical = f"{STACK}-{name}-A1B2C3D4E5F6"
        kind = resource["Type"]
        if kind == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{physical}"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{physical}"
        if kind == "AWS::StepFunctions::StateMachine":
            return f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{physical}"
        return physical

    def get_att(self, name: str, attribute: str) -> str:
        resource = self.template["Resources"][name]
        if not self.exists(name):
            raise ValueError(f"GetAtt of {name}, which its condition leaves out")
        physical = f"{STACK}-{name}-A1B2C3D4E5F6"
        service = {
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{physical}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{physical}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{physical}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{physical}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*",
            "AWS::CloudWatch::Alarm": f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{physical}",
            "AWS::Events::Rule": f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{physical}",
        }
        if attribute in ("QueueName", "TopicName"):
            return physical
        if attribute == "Arn" and resource["Type"] in service:
            return service[resource["Type"]]
        if attribute == "Name":
            return physical
        raise KeyError(f"GetAtt {name}.{attribute} not modelled")

    # -- values
    def value(self, node: Any) -> Any:  # noqa: PLR0911, PLR0912
        if isinstance(node, list):
            out = [self.value(v) for v in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(parts[0], parts[1])
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                delimiter, items = arg
                assert isinstance(delimiter, str), "Fn::Join takes a literal delimiter"
                items = self.value(items)
                return delimiter.join(str(self.value(i)) for i in items)
            if key == "Fn::Split":
                delimiter, text = arg
                assert isinstance(delimiter, str), "Fn::Split takes a literal delimiter"
                return str(self.value(text)).split(delimiter)
            if key == "Fn::Select":
                index, items = arg
                items = self.value(items)
                return items[int(self.value(index))]
            if key == "Fn::If":
                cond, yes, no = arg
                return self.value(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self.value(v) for v in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(v) for v in arg)
            if key == "Fn::Or":
                return any(self.value(v) for v in arg)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not resolved by this renderer")
        out = {}
        for k, v in node.items():
            v = self.value(v)
            if v is not NO_VALUE:
                out[k] = v
        return out

    def sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, variables = arg[0], {k: self.value(v) for k, v in arg[1].items()}
        assert isinstance(text, str), "Fn::Sub takes a literal string"

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources that exist for these parameters, every intrinsic resolved."""
        return {
            logical_id: self.value({k: v for k, v in resource.items() if k != "Condition"})
            for logical_id, resource in self.template["Resources"].items()
            if self.exists(logical_id)
        }


def compact_size(document: Any) -> int:
    """A policy's size as IAM counts it: its JSON without whitespace."""
    return len(re.sub(r"\s", "", json.dumps(document, separators=(",", ":"))))


def render(**given: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(transformed template, resolved resources) for the template under test and these parameters."""
    template = load()
    params = parameters(template, **given)
    transformed = transform(template, params)
    return transformed, Resolver(transformed, params).resources()


def role_policies(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per role: its inline policy documents (its own and AWS::IAM::Policy/RolePolicy resources naming it)
    and the customer managed policy documents attached to it, by logical id."""
    managed_by_arn = {
        f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{STACK}-{lid}-A1B2C3D4E5F6": lid
        for lid, r in resources.items()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
    }
    roles: dict[str, dict[str, Any]] = {}
    for lid, r in resources.items():
        if r["Type"] != "AWS::IAM::Role":
            continue
        props = r["Properties"]
        roles[lid] = {
            "inline": {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])},
            "managed": {
                managed_by_arn[arn]: resources[managed_by_arn[arn]]["Properties"]["PolicyDocument"]
                for arn in props.get("ManagedPolicyArns", [])
                if arn in managed_by_arn
            },
            "aws_managed": [a for a in props.get("ManagedPolicyArns", []) if a not in managed_by_arn],
        }
    physical_role = {f"{STACK}-{lid}-A1B2C3D4E5F6": lid for lid in roles}
    for lid, r in resources.items():
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy"):
            props = r["Properties"]
            for role in props.get("Roles", []) + ([props["RoleName"]] if "RoleName" in props else []):
                roles[physical_role[role]]["inline"][props["PolicyName"]] = props["PolicyDocument"]
        # A managed policy can also attach itself to roles.
        if r["Type"] == "AWS::IAM::ManagedPolicy":
            for role in r["Properties"].get("Roles", []):
                roles[physical_role[role]]["managed"][lid] = r["Properties"]["PolicyDocument"]
    return roles
