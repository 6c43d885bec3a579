"""The dashboards: Grafana's queries use only exported metrics and draw data from a real recording; the PromQL
evaluator behind docs/grafana-dashboard.png computes what Prometheus would; the OpenSearch Dashboards saved
objects aggregate fields the parsers really emit."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_deploy import exported_metric_names, load_module, promql

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((REPO / "deploy/helm/sluice/dashboards/sluice.json").read_text())
RECORDING = json.loads((REPO / "tools/deploy/metrics-recording.json").read_text())
SAVED_OBJECTS = [json.loads(line) for line in
                 (REPO / "deploy/opensearch-dashboards/sluice-saved-objects.ndjson").read_text().splitlines()]


# -- Grafana -----------------------------------------------------------------------------------------------------------


def targets() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in DASHBOARD["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_use_only_exported_metrics() -> None:
    exported = exported_metric_names()
    for title, expr in targets():
        names = promql.metric_names(promql.parse_promql(expr))
        assert names and names <= exported, f"{title}: {names - exported}"


def test_dashboard_layout_is_a_valid_grafana_grid() -> None:
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        gp = panel["gridPos"]
        assert gp["x"] >= 0 and gp["x"] + gp["w"] <= 24, panel["title"]
        covered = {(gp["x"] + dx, gp["y"] + dy) for dx in range(gp["w"]) for dy in range(gp["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["description"] or panel["type"] == "stat"
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert variables == {"datasource", "source", "log_type"}
    titles = " ".join(p["title"].lower() for p in DASHBOARD["panels"])
    for topic in ("indexed", "behind", "dead-letter", "latency", "concurrency", "by source", "by log type", "nacked"):
        assert topic in titles, topic


def test_recording_is_of_exported_metrics_and_every_throughput_panel_has_data() -> None:
    exported = exported_metric_names()
    assert {s["name"] for s in RECORDING["series"]} <= exported
    rec = promql.Recording(RECORDING)
    assert len(rec.times) >= 60
    must_have_data = ["Documents indexed /s by log type", "Documents parsed /s by source", "Bulk request latency",
                      "Dead-lettered records /s by reason", "Kinesis leases held", "SQS messages /s by source"]
    panels = {p["title"]: p for p in DASHBOARD["panels"]}
    for title in must_have_data:
        series = promql.panel_series(rec, panels[title])
        assert any(v > 0 for _, values in series for v in values if not math.isnan(v)), title
    parsed = promql.panel_series(rec, panels["Documents parsed /s by source"])
    assert {name for name, _ in parsed} == {"aws-logs", "app-logs", "cloudwatch"}


def test_png_was_rendered_from_this_dashboard(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "dashboard.png"
    promql.draw(DASHBOARD, promql.Recording(RECORDING), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (REPO / "docs/grafana-dashboard.png").stat().st_size > 50_000


def _recording(series: list[tuple[str, dict[str, str], list[float | None]]]) -> Any:
    return promql.Recording({"started": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
                             "timestamps": [float(t) for t in range(len(series[0][2]))],
                             "series": [{"name": n, "labels": labels, "values": v} for n, labels, v in series]})


def test_promql_rate_sum_by_and_counter_reset() -> None:
    """Values as Prometheus computes them (extrapolatedRate): a series younger than the window is extrapolated
    back by at most the time its counter needed to rise from 0, and rate() divides by the whole window."""
    rec = _recording([
        ("c_total", {"source": "a", "x": "1"}, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]),
        ("c_total", {"source": "a", "x": "2"}, [None] * 8 + [5, 10, 15, 20]),
        ("c_total", {"source": "b", "x": "1"}, [0, 2, 4, 1, 3, 5, 7, 9, 11, 13, 15, 17]),  # reset at t=3
    ])
    at_end = rec.evaluate("sum by (source) (rate(c_total[5s]))")[-1]
    # a/1: 10/s; a/2: 15 over 3 s, extrapolated 1 s back to zero = 20 over the 5 s window; b: 2/s.
    assert at_end == {(("source", "a"),): pytest.approx(10.0 + 4.0), (("source", "b"),): pytest.approx(2.0)}
    assert rec.evaluate('sum(increase(c_total{source="b"}[$__range]))')[-1] == {(): pytest.approx(2 + 2 + 1 + 2 * 8)}
    assert rec.evaluate('rate(c_total{source=~"$source", x="9"}[5s]) or vector(0)')[-1] == {(): 0.0}
    assert rec.evaluate("sum(rate(c_total[5s])) > 100")[-1] == {}
    assert rec.evaluate("sum(rate(c_total[5s])) > 10")[-1] == {(): pytest.approx(16.0)}


def test_promql_histogram_quantile_interpolates_within_the_bucket() -> None:
    buckets = [("0.1", [0, 10]), ("1", [0, 30]), ("10", [0, 40]), ("+Inf", [0, 40])]
    rec = _recording([("h_bucket", {"le": le}, [float(v) for v in values]) for le, values in buckets])
    p50 = rec.evaluate("histogram_quantile(0.5, sum by (le) (rate(h_bucket[10s])))")[-1]
    assert p50 == {(): pytest.approx(0.1 + 0.9 * (20 - 10) / (30 - 10))}
    p99 = rec.evaluate("histogram_quantile(0.99, sum by (le) (rate(h_bucket[10s])))")[-1]
    assert 1 < p99[()] <= 10


@pytest.mark.parametrize("bad", ["rate(x)", "sum(rate(x[5m])", "topk(3, x)", 'x{a=b}', "histogram_quantile(x, y)"])
def test_promql_outside_the_subset_is_refused(bad: str) -> None:
    with pytest.raises(promql.PromQLError):
        promql.parse_promql(bad)


# -- OpenSearch Dashboards --------------------------------------------------------------------------------------------


def emitted_fields() -> dict[str, set[str]]:
    """Index pattern id -> every field the parsers put in documents of its log type (declared in the parser, in the
    common index template, or seen when the real parsers read the compose stack's own sample logs)."""
    import random

    from worker.parsers import get_parser
    from worker.parsers.base import ParseContext
    from worker.samples import alb_lines, cloudtrail_records
    from worker.sinks.templates import COMMON_FIELDS

    uploader = load_module("sluice_upload_samples", REPO / "deploy/compose/samples/upload_samples.py")
    now = datetime.now(UTC)
    samples = {
        "vpc_flow": uploader.vpc_flow_v5(200, random.Random(1), now),
        "alb": list(alb_lines(200, 2, now)),
        "cloudtrail": cloudtrail_records(200, 3, now),
    }
    out: dict[str, set[str]] = {}
    for log_type, records in samples.items():
        parser = get_parser(log_type)(ParseContext(bucket="b", key="k"))
        fields = set(COMMON_FIELDS) | set(parser.fields)
        for record in records:
            doc = parser.parse(record)
            if doc is not None:
                fields |= set(_flatten(doc))
        out[log_type] = fields
    return {"sluice-vpc-flow": out["vpc_flow"], "sluice-alb": out["alb"], "sluice-cloudtrail": out["cloudtrail"]}


def _flatten(doc: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in doc.items():
        if isinstance(value, dict):
            keys += _flatten(value, f"{prefix}{key}.")
        else:
            keys.append(prefix + key)
    return keys


def test_saved_objects_aggregate_fields_the_parsers_emit() -> None:
    by_id = {(o["type"], o["id"]): o for o in SAVED_OBJECTS}
    patterns = {o["id"]: o["attributes"]["title"] for o in SAVED_OBJECTS if o["type"] == "index-pattern"}
    assert patterns["sluice-vpc-flow"] == "sluice-vpc_flow-*" and patterns["sluice-alb"] == "sluice-alb-*"
    fields = emitted_fields()
    visualizations = [o for o in SAVED_OBJECTS if o["type"] == "visualization"]
    for vis in visualizations:
        (ref,) = vis["references"]
        assert ref["type"] == "index-pattern" and ref["id"] in patterns, vis["id"]
        state = json.loads(vis["attributes"]["visState"])
        used = {a["params"]["field"] for a in state["aggs"] if "field" in a["params"]}
        query = json.loads(vis["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
        used |= {q.split(":")[0] for q in [query] if q}
        assert used <= fields[ref["id"]] | {"@timestamp"}, f"{vis['id']}: {used - fields[ref['id']]}"
    for dashboard in (o for o in SAVED_OBJECTS if o["type"] == "dashboard"):
        panels = json.loads(dashboard["attributes"]["panelsJSON"])
        refs = {r["name"]: r for r in dashboard["references"]}
        for panel in panels:
            ref = refs[panel["panelRefName"]]
            assert (ref["type"], ref["id"]) in by_id, f"{dashboard['id']}: missing {ref['id']}"
    titles = " | ".join(v["attributes"]["title"] for v in visualizations)
    for wanted in ("top talkers by bytes", "top talkers by packets", "rejected flows by source", "ingress vs egress"):
        assert wanted in titles


def test_vpc_flow_direction_comes_from_the_custom_format_samples() -> None:
    """The ingress/egress panel needs network.direction, which only flow-direction (v5 formats) provides."""
    assert "network.direction" in emitted_fields()["sluice-vpc-flow"]
