#!/usr/bin/env python3
"""What template.yaml must hold to run in production (issue 16), checked on the template as written and as
expanded by aws-sam-translator. lint_template.py runs these checks, then proves each one can fail: it breaks a
copy of the template in the way the check guards against (MUTATIONS below) and expects the check to say so.

- every function has Errors and Throttles alarms; the inbox has an age-of-oldest-message alarm and the
  dead-letter queue a depth alarm; each HTTP API a 5xx alarm; comparison match below 95 %, Zoho daily quota
  above 80 % and webhook silence have alarms on TDS's own metrics; every alarm notifies the SNS alerts topic;
- the alerts topic exists, tds.alert.raised reaches it through a rule of the stack's bus, and EventBridge may
  publish to it;
- the dashboard exists, its body is JSON once substituted, and it shows the widgets operators need;
- every custom metric that alarms and dashboard name is one the functions emit (METRICS), and the two regular
  expressions other tests use to collect those names (ALARM_METRIC_RE, DASHBOARD_METRIC_RE) find exactly them;
- every function has a log group with retention named /aws/lambda/<FunctionName> that it depends on, and each
  HTTP API stage logs access to a log group with retention and is throttled;
- every function invoked by EventBridge has an EventInvokeConfig with an on-failure destination and a retry
  count; every rule target has a dead-letter queue;
- no function reserves a hard-coded concurrency (only !If/!Ref of a parameter);
- webhook-ingest reads its own secret (TDS_WEBHOOK_SECRET_ARN) and cannot read the Zoho OAuth secret; every
  function knows the metrics namespace; the bus name carries the stack name; default cron schedules differ;
- README.md's "Deploy" section explains every parameter.

Usage: template_checks.py [template.yaml]   (lint_template.py runs it with the lint)
"""

import copy
import json
import re
import sys

# The metrics the functions print (CloudWatch embedded metric format, namespace TDS/<stack>), each also
# emitted without dimensions. The contract between the Rust code and the template.
METRICS = {
    "WebhooksAccepted",
    "WebhooksRejected",
    "EntitiesApplied",
    "EntitiesUnchanged",
    "EntitiesStale",
    "DeadLetters",
    "ZohoCalls",
    "ZohoThrottled",
    "ZohoBudgetWaitMs",
    "TokenRefreshes",
    "ZohoDailyQuotaUsedPercent",
    "SyncRunDurationMs",
    "SyncRunRecords",
    "SyncRunsFailed",
    "ComparisonMatchPercent",
    "ComparisonDifferences",
    "StockChanges",
    "LowStockItems",
    "UnannouncedChanges",
}

# Custom metric names in alarms: `Namespace: !Sub "TDS/${AWS::StackName}"` then `MetricName: <name>`.
ALARM_METRIC_RE = re.compile(r'Namespace: !Sub "TDS/\$\{AWS::StackName\}"\n\s*MetricName: (\w+)')
# Custom metric names in the dashboard: `[ "${MetricsNamespace}", "<name>"` or, in a SEARCH expression,
# `MetricName=\"<name>\"`.
DASHBOARD_METRIC_RE = re.compile(r'\[ "\$\{MetricsNamespace\}", "(\w+)"|MetricName=\\"(\w+)\\"')

NAMESPACE = {"Fn::Sub": "TDS/${AWS::StackName}"}


def _resources(template, kind):
    return {n: r for n, r in template.get("Resources", {}).items() if r.get("Type") == kind}


def _props(resource):
    return resource.get("Properties", {}) or {}


def _ref(value):
    """The logical id a {"Ref": X} or {"Fn::GetAtt": [X, ...]} names, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else att.split(".")[0]
    return None


def _dimensions(alarm):
    return {d.get("Name"): d.get("Value") for d in _props(alarm).get("Dimensions", []) or []}


def _find_alarms(expanded, namespace, metric, **dims):
    found = []
    for name, alarm in _resources(expanded, "AWS::CloudWatch::Alarm").items():
        p = _props(alarm)
        if p.get("Namespace") != namespace or p.get("MetricName") != metric:
            continue
        have = _dimensions(alarm)
        if all(have.get(k) == v for k, v in dims.items()):
            found.append((name, alarm))
    return found


def _actions(alarm, key="AlarmActions"):
    """References in AlarmActions/OKActions, looking into Fn::If branches."""
    out = []

    def walk(v):
        if isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict) and "Fn::If" in v:
            walk(v["Fn::If"][1:])
        else:
            r = _ref(v)
            if r:
                out.append(r)

    walk(_props(alarm).get(key, []))
    return out


def check_alarms(written, expanded):
    problems = []
    topics = list(_resources(expanded, "AWS::SNS::Topic"))
    if len(topics) != 1:
        problems.append(f"expected one AWS::SNS::Topic (the alerts topic), found {topics}")
    topic = topics[0] if topics else None

    wanted = []
    for fn in _resources(expanded, "AWS::Lambda::Function"):
        for metric in ("Errors", "Throttles"):
            wanted.append((f"{metric} alarm of function {fn}", "AWS/Lambda", metric, {"FunctionName": {"Ref": fn}}))
    wanted.append(("inbox age-of-oldest-message alarm", "AWS/SQS", "ApproximateAgeOfOldestMessage",
                   {"QueueName": {"Fn::GetAtt": ["InboxQueue", "QueueName"]}}))
    wanted.append(("dead-letter queue depth alarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                   {"QueueName": {"Fn::GetAtt": ["InboxDeadLetterQueue", "QueueName"]}}))
    for api in _resources(expanded, "AWS::ApiGatewayV2::Api"):
        # HTTP APIs publish 5xx (not REST's 5XXError) with dimension ApiId.
        wanted.append((f"5xx alarm of HTTP API {api}", "AWS/ApiGateway", "5xx", {"ApiId": {"Ref": api}}))
    wanted.append(("comparison match alarm", NAMESPACE, "ComparisonMatchPercent", {}))
    wanted.append(("Zoho daily quota alarm", NAMESPACE, "ZohoDailyQuotaUsedPercent", {}))
    wanted.append(("webhook silence alarm", NAMESPACE, "UnannouncedChanges", {}))
    for what, namespace, metric, dims in wanted:
        if not _find_alarms(expanded, namespace, metric, **dims):
            problems.append(f"missing the {what} ({json.dumps(namespace)} {metric} {json.dumps(dims)})")

    def one(metric):
        found = _find_alarms(expanded, NAMESPACE, metric)
        return _props(found[0][1]) if found else None

    p = one("ComparisonMatchPercent")
    if p and (p.get("ComparisonOperator"), p.get("Threshold"), p.get("Statistic")) != ("LessThanThreshold", 95, "Minimum"):
        problems.append("the comparison match alarm must fire on Minimum < 95")
    p = one("ZohoDailyQuotaUsedPercent")
    if p and (p.get("ComparisonOperator"), p.get("Threshold"), p.get("Statistic")) != ("GreaterThanThreshold", 80, "Maximum"):
        problems.append("the Zoho daily quota alarm must fire on Maximum > 80")
    p = one("UnannouncedChanges")
    if p:
        hours = {"Ref": "WebhookSilenceHours"}
        if (p.get("Period"), p.get("EvaluationPeriods"), p.get("DatapointsToAlarm"), p.get("Statistic")) != (3600, hours, hours, "Sum"):
            problems.append("the webhook silence alarm must sum hourly over WebhookSilenceHours periods, all of them breaching")
        if (written.get("Parameters", {}).get("WebhookSilenceHours", {}).get("MaxValue") or 99) > 24:
            problems.append("WebhookSilenceHours needs MaxValue 24 (an alarm looks back at most one day)")

    for name, alarm in _resources(expanded, "AWS::CloudWatch::Alarm").items():
        if topic and topic not in _actions(alarm):
            problems.append(f"alarm {name} does not notify the alerts topic {topic} (AlarmActions)")
        p = _props(alarm)
        if p.get("Namespace") not in ("AWS/Lambda", "AWS/SQS", "AWS/ApiGateway", NAMESPACE):
            problems.append(f"alarm {name} uses namespace {json.dumps(p.get('Namespace'))}, not TDS/${{AWS::StackName}}")
        if p.get("Namespace") == NAMESPACE and p.get("MetricName") not in METRICS:
            problems.append(f"alarm {name} watches {p.get('MetricName')}, which no function emits (METRICS)")
        if p.get("Namespace") == NAMESPACE and p.get("Dimensions"):
            problems.append(f"alarm {name} names dimensions; TDS metrics are alarmed on without them")
    return problems


def check_alert_route(written, expanded):
    problems = []
    topics = list(_resources(expanded, "AWS::SNS::Topic"))
    if not topics:
        return ["no AWS::SNS::Topic: alarms and alerts have nowhere to go"]
    topic = topics[0]
    routed = False
    for name, rule in _resources(expanded, "AWS::Events::Rule").items():
        p = _props(rule)
        types = (p.get("EventPattern") or {}).get("detail-type", [])
        if "tds.alert.raised" in types and any(_ref(t.get("Arn")) == topic for t in p.get("Targets", [])):
            routed = True
            if _ref(p.get("EventBusName")) != "EventBus":
                problems.append(f"rule {name} must listen on the stack's bus (EventBusName: !Ref EventBus)")
    if not routed:
        problems.append(f"no EventBridge rule routes tds.alert.raised to the alerts topic {topic}")
    allowed = False
    for pol in _resources(expanded, "AWS::SNS::TopicPolicy").values():
        if {"Ref": topic} not in _props(pol).get("Topics", []):
            continue
        for st in _props(pol).get("PolicyDocument", {}).get("Statement", []):
            if (st.get("Principal") or {}).get("Service") == "events.amazonaws.com" and st.get("Effect") == "Allow":
                allowed = True
    if not allowed:
        problems.append(f"no AWS::SNS::TopicPolicy lets events.amazonaws.com publish to {topic}")
    return problems


def _dashboard_text(body):
    """The dashboard body with every ${...} replaced, for a JSON parse."""
    if isinstance(body, dict) and "Fn::Sub" in body:
        sub = body["Fn::Sub"]
        body = sub[0] if isinstance(sub, list) else sub
    if not isinstance(body, str):
        return None
    return re.sub(r"\$\{[^}]+\}", "x", body)


def check_dashboard(written, expanded, text):
    problems = []
    dashboards = _resources(expanded, "AWS::CloudWatch::Dashboard")
    if not dashboards:
        return ["no AWS::CloudWatch::Dashboard"]
    for name, dash in dashboards.items():
        body_text = _dashboard_text(_props(dash).get("DashboardBody"))
        try:
            body = json.loads(body_text)
        except (TypeError, ValueError) as e:
            problems.append(f"dashboard {name}: DashboardBody is not JSON once substituted: {e}")
            continue
        metric_widgets = [w for w in body.get("widgets", []) if w.get("type") == "metric"]
        shown = json.dumps(metric_widgets)
        for metric in ("WebhooksAccepted", "WebhooksRejected", "ApproximateNumberOfMessagesVisible",
                       "ApproximateAgeOfOldestMessage", "EntitiesApplied", "EntitiesUnchanged", "EntitiesStale",
                       "ZohoCalls", "ZohoThrottled", "SyncRunDurationMs", "ComparisonMatchPercent", "Errors"):
            if f'"{metric}"' not in shown and f'\\"{metric}\\"' not in shown:
                problems.append(f"dashboard {name} has no widget showing {metric}")
        budget = [w for w in metric_widgets if '"ZohoCalls"' in json.dumps(w)
                  and any(a.get("value") == 100 for a in w["properties"].get("annotations", {}).get("horizontal", []))]
        if not budget:
            problems.append(f"dashboard {name}: ZohoCalls has no horizontal annotation at the 100/min budget")
    found = {a or b for a, b in DASHBOARD_METRIC_RE.findall(text)}
    if not found:
        problems.append("DASHBOARD_METRIC_RE finds no custom metric in the template")
    for metric in sorted(found - METRICS):
        problems.append(f"the dashboard shows {metric}, which no function emits (METRICS)")
    return problems


def check_metric_regexes(written, expanded, text):
    """ALARM_METRIC_RE finds exactly the custom metrics of the alarms (other tests rely on it)."""
    parsed = {_props(a).get("MetricName") for a in _resources(expanded, "AWS::CloudWatch::Alarm").values()
              if _props(a).get("Namespace") == NAMESPACE}
    by_regex = set(ALARM_METRIC_RE.findall(text))
    if parsed != by_regex:
        return [f"ALARM_METRIC_RE finds {sorted(by_regex)} but the alarms watch {sorted(parsed)}: write custom "
                'metric alarms as `Namespace: !Sub "TDS/${AWS::StackName}"` followed by `MetricName: <name>`']
    return []


def check_log_groups(written, expanded):
    problems = []
    groups = _resources(expanded, "AWS::Logs::LogGroup")
    by_name = {json.dumps(_props(g).get("LogGroupName"), sort_keys=True): n for n, g in groups.items()}
    for fn, res in _resources(expanded, "AWS::Lambda::Function").items():
        name = _props(res).get("FunctionName")
        if not (isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str)):
            problems.append(f"function {fn} needs a FunctionName (!Sub \"${{AWS::StackName}}-...\") to name its log group")
            continue
        want = json.dumps({"Fn::Sub": "/aws/lambda/" + name["Fn::Sub"]}, sort_keys=True)
        group = by_name.get(want)
        if group is None:
            problems.append(f"function {fn} has no AWS::Logs::LogGroup named {json.loads(want)}")
            continue
        if _props(groups[group]).get("RetentionInDays") is None:
            problems.append(f"log group {group} of function {fn} has no RetentionInDays")
        depends = res.get("DependsOn", [])
        if group not in ([depends] if isinstance(depends, str) else depends):
            problems.append(f"function {fn} must DependsOn its log group {group} (else Lambda makes one without retention)")
    for stage, res in _resources(expanded, "AWS::ApiGatewayV2::Stage").items():
        p = _props(res)
        dest = _ref((p.get("AccessLogSettings") or {}).get("DestinationArn"))
        if dest not in groups:
            problems.append(f"HTTP API stage {stage} has no access logs to a log group of the stack")
        elif _props(groups[dest]).get("RetentionInDays") is None:
            problems.append(f"access log group {dest} of stage {stage} has no RetentionInDays")
        throttle = p.get("DefaultRouteSettings") or {}
        if "ThrottlingRateLimit" not in throttle or "ThrottlingBurstLimit" not in throttle:
            problems.append(f"HTTP API stage {stage} is not throttled (DefaultRouteSettings)")
    return problems


def check_failure_handling(written, expanded):
    problems = []
    invoked = {_ref(_props(p).get("FunctionName")) for p in _resources(expanded, "AWS::Lambda::Permission").values()
               if _props(p).get("Principal") == "events.amazonaws.com"}
    configs = {_ref(_props(c).get("FunctionName")): _props(c)
               for c in _resources(expanded, "AWS::Lambda::EventInvokeConfig").values()}
    for fn in sorted(f for f in invoked if f):
        c = configs.get(fn)
        if c is None:
            problems.append(f"function {fn} is invoked by EventBridge but has no EventInvokeConfig")
            continue
        if not ((c.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"):
            problems.append(f"EventInvokeConfig of {fn} has no on-failure destination")
        if "MaximumRetryAttempts" not in c:
            problems.append(f"EventInvokeConfig of {fn} does not set MaximumRetryAttempts")
    for name, rule in _resources(expanded, "AWS::Events::Rule").items():
        for t in _props(rule).get("Targets", []):
            if not (t.get("DeadLetterConfig") or {}).get("Arn"):
                problems.append(f"target {t.get('Id')} of rule {name} has no DeadLetterConfig")
    return problems


def check_concurrency(written, expanded):
    problems = []
    glob = (written.get("Globals") or {}).get("Function") or {}
    sources = [("Globals.Function", glob)]
    sources += [(n, _props(r)) for n, r in _resources(written, "AWS::Serverless::Function").items()]
    sources += [(n + " (expanded)", _props(r)) for n, r in _resources(expanded, "AWS::Lambda::Function").items()]
    for name, props in sources:
        if "ReservedConcurrentExecutions" in props and not isinstance(props["ReservedConcurrentExecutions"], dict):
            problems.append(f"{name} reserves a hard-coded concurrency ({props['ReservedConcurrentExecutions']}); "
                            "use !If [<condition>, !Ref <parameter>, !Ref AWS::NoValue] (new accounts have a quota of 10)")
    return problems


def check_edges(written, expanded):
    problems = []
    fns = _resources(expanded, "AWS::Lambda::Function")
    for fn, res in fns.items():
        env = ((_props(res).get("Environment") or {}).get("Variables") or {})
        if env.get("TDS_METRICS_NAMESPACE") != NAMESPACE:
            problems.append(f"function {fn} lacks TDS_METRICS_NAMESPACE: !Sub \"TDS/${{AWS::StackName}}\"")
    ingest = fns.get("WebhookIngestFunction")
    if ingest is None:
        problems.append("no WebhookIngestFunction")
    else:
        env = (_props(ingest).get("Environment") or {}).get("Variables") or {}
        if _ref(env.get("TDS_WEBHOOK_SECRET_ARN")) != "WebhookSecret":
            problems.append("webhook-ingest must get its secret as TDS_WEBHOOK_SECRET_ARN: !Ref WebhookSecret")
        role = _ref(_props(ingest).get("Role"))
        policies = json.dumps(_props(expanded["Resources"].get(role, {})))
        if "ZohoCredentialsSecret" in policies:
            problems.append(f"webhook-ingest's role {role} can read the Zoho OAuth secret (ZohoCredentialsSecret)")
        if "WebhookSecret" not in policies:
            problems.append(f"webhook-ingest's role {role} cannot read WebhookSecret")
    for name, bus in _resources(expanded, "AWS::Events::EventBus").items():
        if "${AWS::StackName}" not in json.dumps(_props(bus).get("Name")):
            problems.append(f"event bus {name} is not named after the stack")
    crons = {}
    for pname, p in written.get("Parameters", {}).items():
        default = str(p.get("Default", ""))
        if default.startswith("cron("):
            if default in crons:
                problems.append(f"default schedules {crons[default]} and {pname} share {default}")
            crons[default] = pname
    return problems


def check_readme(written, readme):
    """Every template parameter is explained in README.md's "Deploy" section."""
    start = readme.find("\n## Deploy\n")
    if start < 0:
        return ['README.md has no "## Deploy" section']
    end = readme.find("\n## ", start + 1)
    section = readme[start:end if end > 0 else None]
    return [f'README.md "Deploy" does not explain parameter {p}'
            for p in written.get("Parameters", {}) if f"`{p}`" not in section]


def check(written, expanded, text):
    """Every problem found, as sentences."""
    return (check_alarms(written, expanded) + check_alert_route(written, expanded)
            + check_dashboard(written, expanded, text) + check_metric_regexes(written, expanded, text)
            + check_log_groups(written, expanded) + check_failure_handling(written, expanded)
            + check_concurrency(written, expanded) + check_edges(written, expanded))


def _drop(path):
    """A mutation deleting the key at path (a list of keys) of the written template."""
    def mutate(t):
        node = t
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]
    return mutate


def _set(path, value):
    def mutate(t):
        node = t
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return mutate


R = "Resources"
# (what is broken, how, words the failure must contain): lint_template.py applies each to a copy of the
# template and fails if the checks stay silent.
MUTATIONS = [
    ("an Errors alarm removed", _drop([R, "StockPollerErrorsAlarm"]), "Errors alarm of function StockPollerFunction"),
    ("a Throttles alarm removed", _drop([R, "AdminApiThrottlesAlarm"]), "Throttles alarm of function AdminApiFunction"),
    ("the inbox age alarm removed", _drop([R, "InboxAgeAlarm"]), "inbox age-of-oldest-message alarm"),
    ("the DLQ depth alarm removed", _drop([R, "DeadLetterAlarm"]), "dead-letter queue depth alarm"),
    ("an API 5xx alarm removed", _drop([R, "WebhookApi5xxAlarm"]), "5xx alarm of HTTP API HttpApi"),
    ("the match alarm removed", _drop([R, "ComparisonMatchAlarm"]), "comparison match alarm"),
    ("the quota alarm removed", _drop([R, "ZohoQuotaAlarm"]), "Zoho daily quota alarm"),
    ("the silence alarm removed", _drop([R, "WebhookSilenceAlarm"]), "webhook silence alarm"),
    ("an alarm without the topic", _set([R, "ZohoQuotaAlarm", "Properties", "AlarmActions"], []), "does not notify the alerts topic"),
    ("an alarm on a metric nobody emits", _set([R, "ZohoQuotaAlarm", "Properties", "MetricName"], "ZohoQuotaUsed"), "which no function emits"),
    ("the topic removed", _drop([R, "AlertsTopic"]), "AWS::SNS::Topic"),
    ("the alert route removed", _drop([R, "AlertRule"]), "routes tds.alert.raised"),
    ("the dashboard removed", _drop([R, "Dashboard"]), "no AWS::CloudWatch::Dashboard"),
    ("the dashboard body broken", _set([R, "Dashboard", "Properties", "DashboardBody"], {"Fn::Sub": '{"widgets": ['}), "is not JSON"),
    ("a function's log group removed", _drop([R, "StatisticsLogGroup"]), "has no AWS::Logs::LogGroup"),
    ("a function not depending on its log group", _drop([R, "StockPollerFunction", "DependsOn"]), "must DependsOn"),
    ("a log group without retention", _drop([R, "AdminApiLogGroup", "Properties", "RetentionInDays"]), "has no RetentionInDays"),
    ("API access logs removed", _drop([R, "HttpApi", "Properties", "AccessLogSettings"]), "has no access logs"),
    ("access log group without retention", _drop([R, "AdminApiAccessLogGroup", "Properties", "RetentionInDays"]), "has no RetentionInDays"),
    ("API throttling removed", _drop([R, "AdminHttpApi", "Properties", "DefaultRouteSettings"]), "is not throttled"),
    ("a scheduled function without EventInvokeConfig", _drop([R, "StatisticsFunction", "Properties", "EventInvokeConfig"]), "has no EventInvokeConfig"),
    ("an EventInvokeConfig without retries", _drop([R, "StockPollerFunction", "Properties", "EventInvokeConfig", "MaximumRetryAttempts"]), "MaximumRetryAttempts"),
    ("a schedule event without DLQ", _drop([R, "StockPollerFunction", "Properties", "Events", "Full", "Properties", "DeadLetterConfig"]), "has no DeadLetterConfig"),
    ("a rule target without DLQ", _drop([R, "FullSyncRule", "Properties", "Targets", 0, "DeadLetterConfig"]), "has no DeadLetterConfig"),
    ("a hard-coded reserved concurrency", _set([R, "StockPollerFunction", "Properties", "ReservedConcurrentExecutions"], 1), "hard-coded concurrency"),
    ("webhook-ingest reading the Zoho secret", lambda t: t[R]["WebhookIngestFunction"]["Properties"]["Policies"].append(
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "ZohoCredentialsSecret"}}}), "can read the Zoho OAuth secret"),
    ("the metrics namespace removed", _drop(["Globals", "Function", "Environment", "Variables", "TDS_METRICS_NAMESPACE"]), "TDS_METRICS_NAMESPACE"),
    ("a bus named without the stack", _set([R, "EventBus", "Properties", "Name"], "tds"), "not named after the stack"),
    ("full sync and snapshot at one time", _set(["Parameters", "SnapshotSchedule", "Default"], "cron(0 2 * * ? *)"), "share cron(0 2"),
]


def self_test(written, expand) -> list:
    """Applies each mutation to a copy of `written`, expands it with `expand` and returns the mutations the
    checks did not catch (with what they said instead)."""
    missed = []
    for what, mutate, words in MUTATIONS:
        t = copy.deepcopy(written)
        mutate(t)
        # The regex checks read text: give them a rendering of the mutated template (_text_of).
        try:
            expanded = expand(copy.deepcopy(t))
        except Exception as e:  # noqa: BLE001 - a transform failure is a catch too
            expanded, said = None, [f"transform failed: {e}"]
        if expanded is not None:
            said = check(t, expanded, _text_of(t))
        if not any(words in s for s in said):
            missed.append(f"{what}: expected a problem containing {words!r}, got {said}")
    return missed


def _text_of(template):
    """A parsed template as text for the regex checks: its custom-metric alarms written in the form
    ALARM_METRIC_RE reads, and the dashboard body."""
    lines = []
    for res in template.get("Resources", {}).values():
        p = _props(res)
        if res.get("Type") == "AWS::CloudWatch::Alarm" and p.get("Namespace") == NAMESPACE:
            lines.append(f'      Namespace: !Sub "TDS/${{AWS::StackName}}"\n      MetricName: {p.get("MetricName")}')
        if res.get("Type") == "AWS::CloudWatch::Dashboard":
            body = p.get("DashboardBody")
            if isinstance(body, dict) and "Fn::Sub" in body:
                body = body["Fn::Sub"][0] if isinstance(body["Fn::Sub"], list) else body["Fn::Sub"]
            if isinstance(body, str):
                lines.append(body)
    return "\n".join(lines)


if __name__ == "__main__":
    # Standalone: expand as lint_template.py does and print the problems.
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import lint_template  # noqa: E402

    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path) as f:
        text = f.read()
    written, expanded = lint_template.load_and_expand(path)
    found = check(written, expanded, text)
    for p in found:
        print(f"{path}: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)
