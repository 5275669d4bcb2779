#!/usr/bin/env python3
"""Lint template.yaml twice: as written (cfn-lint validates SAM resources only against SAM's schema),
and expanded offline by aws-sam-translator into plain CloudFormation, so mistakes inside
AWS::Serverless::* resources (bad FunctionResponseTypes, batch sizes, dangling references, policies)
are caught by cfn-lint's CloudFormation rules too. No AWS call is made: managed policies resolve to
placeholder ARNs and local CodeUri values to a placeholder S3 object.

It also checks that the expanded APIs authorize every admin route: each operation under /api/ of an
HTTP API must name a security requirement (the IAM authorizer today), so a route added without one fails.

And that every schedule (AWS::Events::Rule) of the expanded template follows SchedulesEnabled: SAM turns
a function event's `Enabled: !If [...]` into a literal ENABLED, so an event written that way would run
even in a stack deployed with SchedulesEnabled=false.

Usage: lint_template.py [template.yaml]
"""

import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class _PolicyMap(dict):
    """Any AWS managed policy name maps to its well-known ARN."""

    def __missing__(self, name):
        return f"arn:aws:iam::aws:policy/{name}"

    def get(self, name, default=None):
        return self[name]

    def __contains__(self, name):
        return True


class OfflinePolicyLoader:
    """Resolves AWS managed policy names without calling IAM."""

    def load(self):
        return _PolicyMap()


def unauthorized_admin_routes(expanded) -> list:
    """Operations of the expanded HTTP APIs under /api/ that name no authorizer."""
    found = []
    for name, res in expanded.get("Resources", {}).items():
        if res.get("Type") != "AWS::ApiGatewayV2::Api":
            continue
        body = res.get("Properties", {}).get("Body", {})
        default = body.get("security")
        for route, ops in body.get("paths", {}).items():
            if not route.startswith("/api/"):
                continue
            for method, op in ops.items():
                if not (op.get("security") or default):
                    found.append(f"{name} {method} {route}")
    return found


def schedules_ignoring_the_switch(expanded) -> list:
    """Rules of the expanded template whose State does not depend on the SchedulesOn condition."""
    found = []
    for name, res in expanded.get("Resources", {}).items():
        if res.get("Type") != "AWS::Events::Rule":
            continue
        state = res.get("Properties", {}).get("State")
        if not (isinstance(state, dict) and state.get("Fn::If", [None])[0] == "SchedulesOn"):
            found.append(f"{name} (State: {json.dumps(state)})")
    return found


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path) as f:
        template = yaml_parse(f.read())

    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function":
            uri = props.get("CodeUri")
            if uri is None or (isinstance(uri, str) and not uri.startswith("s3://")):
                props["CodeUri"] = "s3://tds-placeholder/code.zip"
        if res.get("Type") == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://tds-placeholder/layer.zip"

    params = {p: v.get("Default", "placeholder") for p, v in template.get("Parameters", {}).items()}
    params.setdefault("AWS::Region", "us-east-1")
    try:
        expanded = transform(template, params, OfflinePolicyLoader())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{path}: SAM transform error: {cause.message}", file=sys.stderr)
        return 1

    open_routes = unauthorized_admin_routes(expanded)
    for route in open_routes:
        print(f"{path}: admin route without an authorizer: {route}", file=sys.stderr)
    always_on = schedules_ignoring_the_switch(expanded)
    for rule in always_on:
        print(f"{path}: schedule not switched by SchedulesEnabled: {rule}", file=sys.stderr)

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(expanded, out, indent=1, default=str)
        expanded_path = out.name
    print(f"cfn-lint {path} (as written)")
    first = subprocess.run(["cfn-lint", path]).returncode
    print(f"cfn-lint {path} (expanded by aws-sam-translator)")
    # Unused parameters and conditions (W2001, W8001) are judged on the template as written: SAM
    # Globals that no function uses yet vanish in the expansion and would be reported falsely.
    second = subprocess.run(["cfn-lint", "--ignore-checks", "W2001", "W8001", "--", expanded_path]).returncode
    os.unlink(expanded_path)
    return first or second or (1 if open_routes or always_on else 0)


if __name__ == "__main__":
    sys.exit(main())
