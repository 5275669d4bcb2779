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

Both cfn-lint runs append the AWS serverless rule set (cfn-lint-serverless: tracing, log retention, API access
logs and throttling, dead-letter queues, on-failure destinations) and any finding fails. A finding is
suppressed only in the template (a resource's Metadata cfn-lint ignore_checks, its reason beside it); for the
expanded run the suppressions of a SAM resource are carried to the resources SAM generates from it (those
whose logical id starts with its own), since SAM copies Metadata to some of them only.

Then template_checks.py's checks of what production needs (alarms, topic, dashboard, log groups, failure
destinations, dead-letter queues, no hard-coded reserved concurrency, ...), and its self-test: each check is
made to fail on a copy of the template broken on purpose, so a check that can no longer fail is caught too.

Usage: lint_template.py [template.yaml]
"""

import copy
import json
import logging
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# aws-sam-translator warns of its own unpublished usage metrics after every offline transform.
logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import template_checks  # noqa: E402


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
    """Schedules (rules with a ScheduleExpression) of the expanded template whose State does not depend on
    the SchedulesOn condition. Rules matching events (the alert route) are not schedules."""
    found = []
    for name, res in expanded.get("Resources", {}).items():
        if res.get("Type") != "AWS::Events::Rule" or "ScheduleExpression" not in res.get("Properties", {}):
            continue
        state = res.get("Properties", {}).get("State")
        if not (isinstance(state, dict) and state.get("Fn::If", [None])[0] == "SchedulesOn"):
            found.append(f"{name} (State: {json.dumps(state)})")
    return found


def carry_suppressions(written, expanded) -> None:
    """Gives each resource SAM generated from a SAM resource (logical id prefixed by its id) that resource's
    cfn-lint suppressions, when it has none of its own."""
    sam = {n: r["Metadata"]["cfn-lint"] for n, r in written.get("Resources", {}).items()
           if r.get("Type", "").startswith("AWS::Serverless::") and "cfn-lint" in (r.get("Metadata") or {})}
    for name, res in expanded.get("Resources", {}).items():
        for origin, config in sam.items():
            if name.startswith(origin) and "cfn-lint" not in (res.get("Metadata") or {}):
                res.setdefault("Metadata", {})["cfn-lint"] = copy.deepcopy(config)


def expand(template) -> dict:
    """The template expanded offline by aws-sam-translator (local code locations become placeholders; the
    parameters take their defaults). Raises InvalidDocumentException."""
    written = copy.deepcopy(template)
    for res in template.get("Resources", {}).values():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function":
            uri = props.get("CodeUri")
            if uri is None or (isinstance(uri, str) and not uri.startswith("s3://")):
                props["CodeUri"] = "s3://tds-placeholder/code.zip"
        if res.get("Type") == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://tds-placeholder/layer.zip"
    params = {p: v.get("Default", "placeholder") for p, v in template.get("Parameters", {}).items()}
    params.setdefault("AWS::Region", "us-east-1")
    expanded = transform(template, params, OfflinePolicyLoader())
    carry_suppressions(written, expanded)
    return expanded


def load_and_expand(path):
    """(the template as written, as expanded)."""
    with open(path) as f:
        written = yaml_parse(f.read())
    return written, expand(copy.deepcopy(written))


def cfn_lint(*args) -> int:
    return subprocess.run(["cfn-lint", "--append-rules", "cfn_lint_serverless.rules", *args]).returncode


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    try:
        import cfn_lint_serverless  # noqa: F401
    except ImportError:
        print("cfn-lint-serverless is missing: pip install -r infra/requirements-test.txt", file=sys.stderr)
        return 1
    with open(path) as f:
        text = f.read()
    try:
        written, expanded = load_and_expand(path)
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
    print(f"cfn-lint + serverless rules: {path} (as written)")
    first = cfn_lint("--", path)
    print(f"cfn-lint + serverless rules: {path} (expanded by aws-sam-translator)")
    # Unused parameters and conditions (W2001, W8001) are judged on the template as written: SAM
    # Globals that no function uses yet vanish in the expansion and would be reported falsely.
    second = cfn_lint("--ignore-checks", "W2001", "W8001", "--", expanded_path)
    os.unlink(expanded_path)

    print(f"production checks: {path} (template_checks.py)")
    problems = template_checks.check(written, expanded, text)
    readme = os.path.join(os.path.dirname(os.path.abspath(path)), "README.md")
    if os.path.exists(readme):
        with open(readme) as f:
            problems += template_checks.check_readme(written, f.read())
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    missed = template_checks.self_test(written, expand)
    for m in missed:
        print(f"{path}: template_checks.py cannot fail: {m}", file=sys.stderr)
    print(f"production checks: {len(problems)} problem(s); self-test: "
          f"{len(template_checks.MUTATIONS) - len(missed)} of {len(template_checks.MUTATIONS)} breakages caught")
    return first or second or (1 if open_routes or always_on or problems or missed else 0)


if __name__ == "__main__":
    sys.exit(main())
