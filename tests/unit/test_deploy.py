"""The deployment files agree with the code: the config every deployment renders is a valid config of
worker/config.py, KEDA and the ECS autoscaling watch the queues the config reads, the ECS task role grants exactly
the AWS calls the worker makes, and the dashboard and alerts use only metrics the worker exports.

The validators themselves (hadolint, compose, helm lint, kubernetes-validate, cfn-lint, ...) run in
tools/deploy/lint.py (`make lint-deploy`); the last test here shows that it fails on a broken manifest.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from worker.config import Config, KinesisSource, SqsS3Source, SqsSource, parse_config

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy/helm/sluice"
ECS = REPO / "deploy/ecs/sluice.yaml"


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


lint = load_module("sluice_deploy_lint", REPO / "tools/deploy/lint.py")
promql = load_module("sluice_render_dashboard", REPO / "tools/deploy/render_dashboard.py")


# -- what the code defines -----------------------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    """Every sample name the worker and the supervisor can put on /metrics (counters with `_total`, histograms
    with `_bucket/_sum/_count`), from the live registry and the supervisor's collector."""
    from prometheus_client import REGISTRY

    import worker.app  # noqa: F401  (imports every module that declares metrics)

    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("sluice_"):
            continue
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    supervisor = (REPO / "worker/supervisor.py").read_text()
    for kind, name in re.findall(r"(Counter|Gauge)MetricFamily\(\s*\"(sluice_\w+)\"", supervisor):
        names.add(name + "_total" if kind == "Counter" else name)
    assert "sluice_documents_indexed_total" in names and "sluice_bulk_request_duration_seconds_bucket" in names
    return names


def key_paths(tree: Any, prefix: str = "") -> set[str]:
    """Dotted keys of a config tree; a source is named by its type (`sources.<sqs_s3>.queue_url`)."""
    out: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            if prefix == "sources." and isinstance(value, dict):
                key = f"<{value.get('type')}>"
            path = f"{prefix}{key}"
            out.add(path)
            out |= key_paths(value, path + ".")
    return out


# -- the Helm chart --------------------------------------------------------------------------------------------------

helm_python = pytest.importorskip("helm_python")


def rendered(scenario: str) -> list[dict[str, Any]]:
    return [doc for _, doc in lint.manifests(lint.render_chart(CHART, lint.SCENARIOS[scenario]))]


def one(docs: list[dict[str, Any]], kind: str, name: str = "sluice") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}: {len(found)} rendered"
    return found[0]


def chart_config(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """(config tree from the ConfigMap, the container's env, the container)."""
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["sluice.yaml"])
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return config, env, container


@pytest.mark.parametrize("scenario", sorted(lint.SCENARIOS))
def test_rendered_config_is_a_valid_worker_config_with_every_variable_set(scenario: str) -> None:
    """KEDA on and off, HPA, monitoring: the ConfigMap parses with worker/config.py, using only the variables the
    Deployment sets (a `${VAR}` the pod does not have would stop the worker at start-up)."""
    docs = rendered(scenario)
    config, env, container = chart_config(docs)
    cfg = parse_config(config, env=env)
    port = cfg.telemetry.metrics_port
    assert container["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == port
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > cfg.worker.shutdown_grace + 5
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert {d["metadata"].get("namespace") for d in docs} == {"logs"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["args"][:3] == ["run", "--config", "/etc/sluice/sluice.yaml"]


def test_keda_scales_on_the_queue_and_stream_the_config_reads() -> None:
    docs = rendered("keda-sqs")
    config, env, _ = chart_config(docs)
    cfg = parse_config(config, env=env)
    queues = {s.queue_url for s in cfg.sources.values() if isinstance(s, SqsS3Source | SqsSource)}
    scaled = one(docs, "ScaledObject")
    assert one(docs, "TriggerAuthentication")["spec"]["podIdentity"] == {"provider": "aws", "identityOwner": "workload"}
    assert scaled["spec"]["scaleTargetRef"]["name"] == one(docs, "Deployment")["metadata"]["name"]
    sqs = [t for t in scaled["spec"]["triggers"] if t["type"] == "aws-sqs-queue"]
    assert sqs and all(env[t["metadata"]["queueURLFromEnv"]] in queues for t in sqs)
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert "replicas" not in one(docs, "Deployment")["spec"], "KEDA owns the replica count"

    docs = rendered("keda-kinesis")
    config, env, _ = chart_config(docs)
    streams = {s.stream_name for s in parse_config(config, env=env).sources.values() if isinstance(s, KinesisSource)}
    kinesis = [t for t in one(docs, "ScaledObject")["spec"]["triggers"] if t["type"] == "aws-kinesis-stream"]
    assert kinesis and {t["metadata"]["streamName"] for t in kinesis} <= streams


def test_hpa_is_the_alternative_to_keda() -> None:
    docs = rendered("hpa")
    assert one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert not [d for d in docs if d["kind"] in ("ScaledObject", "TriggerAuthentication")]
    assert "replicas" not in one(docs, "Deployment")["spec"]
    assert one(rendered("defaults"), "Deployment")["spec"]["replicas"] == 2


def test_alerts_and_dashboard_configmap_use_only_exported_metrics() -> None:
    exported = exported_metric_names()
    docs = rendered("monitoring")
    rules = one(docs, "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {"SluiceMessagesBackingUp", "SluiceDeadLettersRising", "SluiceBulkErrors",
                                           "SluiceKinesisFallingBehind"}
    for rule in rules:
        names = promql.metric_names(promql.parse_promql(rule["expr"]))
        assert names and names <= exported, f"{rule['alert']}: {names - exported}"
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    dashboard = maps["sluice-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["sluice.json"].strip() == (CHART / "dashboards/sluice.json").read_text().strip()
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert "@sha256:" in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= one(docs, "Service")["spec"]["selector"].items()


# -- ECS (CloudFormation) ----------------------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """Reads `!Ref`, `!Sub`, ... as the long-form `{"Fn::...": ...}` mappings."""


def _intrinsic(tag: str) -> None:
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    _CfnLoader.add_constructor(f"!{tag}", construct)


for _tag in ("Ref", "Sub", "Join", "If", "GetAtt", "Equals", "Not", "And", "Or", "Condition"):
    _intrinsic(_tag)

TEMPLATE: dict[str, Any] = yaml.load(ECS.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass


class Stack:
    """Enough of CloudFormation to evaluate the template's strings for given parameters: Ref, Sub, Join, If,
    GetAtt and conditions. Resources resolve to recognisable stand-ins (`<NotificationQueue.QueueUrl>`)."""

    def __init__(self, **params: str) -> None:
        self.params = {name: str(spec.get("Default", "")) for name, spec in TEMPLATE["Parameters"].items()}
        self.params.update(params)
        self.params.update({"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                            "AWS::StackName": "sluice"})
        self.conditions = {name: self.value(c) for name, c in TEMPLATE["Conditions"].items()}

    def ref(self, name: str) -> str:
        if name in self.params:
            return self.params[name]
        assert name in TEMPLATE["Resources"], f"Ref to unknown {name}"
        return f"<{name}>"

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict) or len(node) != 1:
            return {k: self.value(v) for k, v in node.items()} if isinstance(node, dict) else node
        (fn, arg), = node.items()
        if fn == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::Join":
            return arg[0].join(str(self.value(x)) for x in arg[1])
        if fn == "Fn::If":
            return self.value(arg[1] if self.conditions[arg[0]] else arg[2])
        if fn == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        if fn == "Fn::Not":
            return not self.value(arg[0])
        if fn == "Fn::And":
            return all(self.value(a) for a in arg)
        if fn == "Condition":
            return self.conditions[arg]
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.value(v) for k, v in arg[1].items()})

            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name in extra:
                    return str(extra[name])
                return f"<{name}>" if "." in name else self.ref(name)
            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {fn: self.value(arg)}


NO_VALUE = object()
STACKS = {
    "defaults": {},
    "kinesis": {"KinesisStreamArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/app-logs"},
    "kinesis-cross-account": {"KinesisStreamArn": "arn:aws:kinesis:eu-west-1:210987654321:stream/app-logs",
                              "KinesisRoleArn": "arn:aws:iam::210987654321:role/sluice-reader"},
    "basic-auth-secret": {"OpenSearchSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:os-AbCdEf"},
}


def container(stack: Stack) -> dict[str, Any]:
    task = stack.value(TEMPLATE["Resources"]["TaskDefinition"]["Properties"])
    return dict(task["ContainerDefinitions"][0])


def ecs_config(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Config]:
    import worker.secret_refs as secret_refs

    monkeypatch.setattr(secret_refs, "botocore_fetcher",
                        lambda aws: lambda ref: '{"username": "sluice", "password": "pw"}')
    env = {e["Name"]: e["Value"] for e in container(stack)["Environment"]}
    tree = yaml.safe_load(env["SLUICE_CONFIG"])
    return tree, parse_config(tree, env={})


@pytest.mark.parametrize("name", sorted(STACKS))
def test_ecs_config_is_a_valid_worker_config(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = Stack(OpenSearchEndpoint="https://search-logs.eu-west-1.es.amazonaws.com",
                  OpenSearchDomainArn="arn:aws:es:eu-west-1:123456789012:domain/logs", **STACKS[name])
    tree, cfg = ecs_config(stack, monkeypatch)
    c = container(stack)
    grace = max(float(TEMPLATE["Parameters"]["ShutdownGrace"]["MaxValue"]), cfg.worker.shutdown_grace)
    assert c["StopTimeout"] >= grace + 5, "SIGKILL must come after the drain (and the supervisor's margin)"
    assert c["PortMappings"][0]["ContainerPort"] == cfg.telemetry.metrics_port
    assert f":{cfg.telemetry.metrics_port}/healthz" in c["HealthCheck"]["Command"][-1]
    assert c["ReadonlyRootFilesystem"] is True and c["MountPoints"][0]["ContainerPath"] == "/tmp"
    assert cfg.sources["aws-logs"].queue_url == "<NotificationQueue.QueueUrl>"  # type: ignore[union-attr]
    assert cfg.dead_letters.replay_queue_url == "<ReplayQueue.QueueUrl>"
    if "Kinesis" in " ".join(STACKS[name]):
        source = cfg.sources["stream"]
        assert isinstance(source, KinesisSource) and source.lease_table == "<LeaseTable>"
        assert source.role_arn == (STACKS[name].get("KinesisRoleArn") or None)
    if "OpenSearchSecretArn" in STACKS[name]:
        assert cfg.opensearch.auth.type == "basic" and cfg.opensearch.auth.password == "pw"
        assert "pw" not in str(c), "the secret's value must never be in the task definition"
    else:
        assert cfg.opensearch.auth.type == "sigv4"

    # The chart's default config and the ECS one use the same keys of the config model.
    chart_tree, _, _ = chart_config(rendered("keda-sqs"))
    ecs_keys, chart_keys = key_paths(tree), key_paths(chart_tree)
    if name == "defaults":
        assert ecs_keys == chart_keys
    assert chart_keys <= ecs_keys | {"opensearch.auth.service"}


def test_ecs_autoscaling_tracks_the_configured_queue() -> None:
    stack = Stack()
    policy = stack.value(TEMPLATE["Resources"]["BacklogPerTaskScaling"]["Properties"])
    metrics = {m["Id"]: m for m in policy["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
               ["Metrics"]}
    queue = metrics["visible"]["MetricStat"]["Metric"]
    assert queue["Namespace"] == "AWS/SQS" and queue["Dimensions"][0]["Value"] == "<NotificationQueue.QueueName>"
    assert metrics["backlog_per_task"]["ReturnData"] is True
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == "100"
    redrive = TEMPLATE["Resources"]["NotificationQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5


# Every AWS operation the running worker can call (snake_case, as in the code) -> the IAM actions it needs.
CALL_ACTIONS: dict[str, set[str]] = {
    "receive_message": {"sqs:ReceiveMessage"}, "delete_message": {"sqs:DeleteMessage"},
    "delete_message_batch": {"sqs:DeleteMessage"}, "change_message_visibility": {"sqs:ChangeMessageVisibility"},
    "change_message_visibility_batch": {"sqs:ChangeMessageVisibility"}, "send_message": {"sqs:SendMessage"},
    "get_object": {"s3:GetObject"}, "head_object": {"s3:GetObject"}, "put_object": {"s3:PutObject"},
    "copy_object": {"s3:GetObject", "s3:PutObject"},
    "list_shards": {"kinesis:ListShards"}, "get_shard_iterator": {"kinesis:GetShardIterator"},
    "get_records": {"kinesis:GetRecords"},
    "describe_table": {"dynamodb:DescribeTable"}, "create_table": {"dynamodb:CreateTable"},
    "scan": {"dynamodb:Scan"}, "put_item": {"dynamodb:PutItem"}, "update_item": {"dynamodb:UpdateItem"},
    "assume_role": {"sts:AssumeRole"}, "get_secret_value": {"secretsmanager:GetSecretValue"},
}
# Granted on purpose though no call needs it, or needed by a call but deliberately not granted.
EXTRA_GRANTS = {"s3:GetObjectVersion": "get_object with a VersionId", "s3:ListBucket": "404 instead of 403"}
NOT_GRANTED = {"dynamodb:CreateTable": "the stack creates the lease table"}
# What `sluice run` executes (not the CLI-only commands: demo, bench, backfill, replay --from-bucket, setup).
RUNTIME = ["worker/aws.py", "worker/dead_letters.py", "worker/secret_refs.py", "worker/sources",
           "worker/replay/engine.py", "worker/replay/objects.py", "worker/replay/originals.py",
           "worker/replay/pointers.py", "worker/replay/poison.py", "worker/sinks/opensearch.py"]
# The optional Parquet sink (worker/sinks/parquet.py) is not configured by the ECS template: its bucket's grants
# (s3:PutObject, s3:AbortMultipartUpload) go with whoever adds a `parquet` section.


def runtime_aws_calls() -> set[str]:
    """Every botocore operation (of the services the worker uses) called from the runtime modules."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    operations = {xform_name(op) for service in ("s3", "sqs", "kinesis", "dynamodb", "sts", "secretsmanager")
                  for op in session.get_service_model(service).operation_names}
    files = [p for entry in RUNTIME for p in ((REPO / entry).rglob("*.py") if (REPO / entry).is_dir()
                                              else [REPO / entry])]
    calls = set()
    for path in files:
        calls |= {m for m in re.findall(r"\.(\w+)\(", path.read_text()) if m in operations}
    return calls - {"close", "get_paginator"}


def granted_actions(stack: Stack) -> set[str]:
    role = stack.value(TEMPLATE["Resources"]["TaskRole"]["Properties"])
    granted: set[str] = set()
    for statement in role["Policies"][0]["PolicyDocument"]["Statement"]:
        actions = statement["Action"]
        granted |= {actions} if isinstance(actions, str) else set(actions)
    return granted


def test_ecs_task_role_grants_exactly_the_calls_the_worker_makes() -> None:
    calls = runtime_aws_calls()
    unknown = calls - set(CALL_ACTIONS)
    assert not unknown, f"new AWS calls in the worker: map them to IAM actions here and in the roles: {unknown}"
    needed = set().union(*(CALL_ACTIONS[c] for c in calls)) - set(NOT_GRANTED)
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s"
    # Same account: the task role reads the stream itself.
    direct = granted_actions(Stack(KinesisStreamArn="arn:aws:kinesis:eu-west-1:123456789012:stream/s",
                                   OpenSearchSecretArn=secret))
    # Another account: the task role only assumes the role the stream's account grants the reads to.
    cross = granted_actions(Stack(KinesisStreamArn="arn:aws:kinesis:eu-west-1:210987654321:stream/s",
                                  KinesisRoleArn="arn:aws:iam::210987654321:role/r"))
    opensearch = {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"}
    assert needed - {"sts:AssumeRole"} - direct == set(), "the worker calls these but the task role lacks them"
    assert "sts:AssumeRole" in cross and not {a for a in cross if a.startswith("kinesis:")}
    assert "sts:AssumeRole" not in direct and "secretsmanager:GetSecretValue" not in cross
    assert (direct | cross) - needed - set(EXTRA_GRANTS) - opensearch == set(), "granted but never called"
    assert opensearch <= direct


# -- docker compose ---------------------------------------------------------------------------------------------------


def test_compose_config_parses_with_the_environment_compose_sets() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service = compose["services"]["sluice"]
    env = {k: str(v) for k, v in service["environment"].items()}
    cfg = parse_config(yaml.safe_load((REPO / "deploy/compose/sluice.yaml").read_text()), env=env)
    assert {type(s).__name__ for s in cfg.sources.values()} == {"SqsS3Source", "SqsSource", "KinesisSource",
                                                               "ReplaySource"}
    port = cfg.telemetry.metrics_port
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert float(service["stop_grace_period"].rstrip("s")) > cfg.worker.shutdown_grace
    prometheus = yaml.safe_load((REPO / "deploy/compose/prometheus/prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == [f"sluice:{port}"]
    init = (REPO / "deploy/compose/localstack-init/ready.d/10-sluice-resources.sh").read_text()
    queues = {"SLUICE_QUEUE_URL": "sluice-notifications", "SLUICE_APP_QUEUE_URL": "sluice-app-logs",
              "SLUICE_REPLAY_QUEUE_URL": "sluice-replay"}
    for variable, queue in queues.items():
        assert env[variable].endswith(f"/{queue}") and f":-{queue}}}" in init
    assert f"STREAM:-{env['SLUICE_KINESIS_STREAM']}" in init
    samples = compose["services"]["samples"]["environment"]
    assert samples["APP_LOG_GROUP"] in init and samples["VPC_LOG_GROUP"] in init
    source = cfg.sources["cloudwatch"]
    assert isinstance(source, KinesisSource) and samples["VPC_LOG_GROUP"] in source.parser_options["log_groups"]


# -- the linter fails on a broken manifest ---------------------------------------------------------------------------


def test_lint_fails_on_a_broken_manifest(tmp_path: Path) -> None:
    """A typo in a template (`readynessProbe`) renders fine and passes helm lint; kubernetes-validate --strict in
    tools/deploy/lint.py rejects it, and the command exits non-zero."""
    root = tmp_path / "repo"
    for part in ("deploy", "tools/deploy"):
        shutil.copytree(REPO / part, root / part)
    deployment = root / "deploy/helm/sluice/templates/deployment.yaml"
    text = deployment.read_text()
    assert "          readinessProbe:" in text
    deployment.write_text(text.replace("          readinessProbe:", "          readynessProbe:"))
    broken = subprocess.run([sys.executable, str(REPO / "tools/deploy/lint.py"), "--root", str(root), "--only", "helm"],
                            capture_output=True, text=True, timeout=300)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "== helm: FAILED" in broken.stdout
    assert "readynessProbe" in broken.stdout and "Additional properties are not allowed" in broken.stdout
    print(broken.stdout)  # shown with -s: the failure a developer sees
