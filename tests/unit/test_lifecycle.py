"""Index lifecycle: names per mode, ISM policy bodies, templates per mode, and the create/update/unchanged
decision of `sluice setup` (against the forms a cluster answers with), with no server."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from worker.config import OpenSearchConfig
from worker.model import AckSet, Document, Origin
from worker.parsers import log_types
from worker.setup import ISM_UNSUPPORTED, install, policy_outcome, template_outcome
from worker.sinks.lifecycle import (
    ISM_PRIORITY,
    KNOWN_ACTIONS,
    ROLLOVER_ALIAS_SETTING,
    LifecycleConfig,
    index_pattern,
    ism_policy,
    lifecycle_of,
    pattern_problems,
    policy_problems,
    write_name,
    write_pattern,
)
from worker.sinks.opensearch import IndexNamer, OpenSearchSink
from worker.sinks.templates import index_templates, ism_policies, targets

DEFAULT = "sluice-{log_type}-{yyyy}.{MM}.{dd}"


def os_cfg(lifecycle: LifecycleConfig | None = None, **over: Any) -> OpenSearchConfig:
    """An OpenSearchConfig with a lifecycle section, whether or not OpenSearchConfig declares the field yet."""
    cfg = OpenSearchConfig(hosts=["http://127.0.0.1:9200"], **over)
    return cfg if lifecycle is None else cfg.model_copy(update={"lifecycle": lifecycle})


# --- names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "expected"), [
    (DEFAULT, "sluice-{log_type}"),
    ("logs-{log_type}-{yyyy}-{MM}-{dd}", "logs-{log_type}"),
    ("{yyyy}.{MM}.{dd}-logs-{log_type}", "logs-{log_type}"),
    ("a-{yyyy}-b-{MM}-{log_type}", "a-b-{log_type}"),
    ("logs_{log_type}_{yyyy}{MM}", "logs_{log_type}"),
    ("logs-{log_type}", "logs-{log_type}"),
])
def test_write_pattern_drops_the_date_and_its_separators(pattern: str, expected: str) -> None:
    assert write_pattern(pattern) == expected


def test_index_pattern_per_mode() -> None:
    assert index_pattern(DEFAULT, "alb", "daily") == "sluice-alb-*.*.*"
    assert index_pattern(DEFAULT, "alb", "rollover") == "sluice-alb-*"
    assert index_pattern(DEFAULT, "alb", "data_stream") == "sluice-alb"
    # cloudfront's patterns must not catch cloudfront_realtime's indices (one template, one policy per type)
    for mode in ("daily", "rollover", "data_stream"):
        pat = index_pattern(DEFAULT, "cloudfront", mode)  # type: ignore[arg-type]
        regex = re.escape(pat).replace(r"\*", ".*")
        assert not re.fullmatch(regex, write_name(DEFAULT, "cloudfront_realtime") + "-000001")
        assert not re.fullmatch(regex, "sluice-cloudfront_realtime-2026.01.02")


def test_pattern_problems_need_log_type_outside_daily() -> None:
    patterns = {"opensearch.index": "logs-{yyyy}.{MM}.{dd}", "sources.x.index": "x-{log_type}"}
    assert pattern_problems("daily", patterns) == []
    problems = pattern_problems("rollover", patterns)
    assert len(problems) == 1 and problems[0].startswith("opensearch.index:")


def test_index_namer_daily_is_unchanged() -> None:
    namer = IndexNamer(DEFAULT)
    assert namer("alb", "2026-11-23T10:00:00Z") == "sluice-alb-2026.11.23"
    assert namer("alb", "2026-11-23T23:59:59Z", "any-source") == "sluice-alb-2026.11.23"
    assert re.fullmatch(r"sluice-alb-\d{4}\.\d\d\.\d\d", namer("alb", None))


@pytest.mark.parametrize("mode", ["rollover", "data_stream"])
def test_index_namer_writes_to_one_name_per_log_type(mode: str) -> None:
    namer = IndexNamer(DEFAULT, mode)  # type: ignore[arg-type]
    assert namer("alb", "2026-11-23T10:00:00Z") == "sluice-alb"
    assert namer("alb", "1999-01-01T00:00:00Z") == "sluice-alb"
    assert namer("cloudtrail", None) == "sluice-cloudtrail"


def test_index_namer_per_source_override() -> None:
    daily = IndexNamer(DEFAULT, "daily", {"app": "app-{log_type}-{yyyy}.{MM}"})
    assert daily("generic", "2026-11-23T10:00:00Z", "app") == "app-generic-2026.11"
    assert daily("generic", "2026-11-23T10:00:00Z", "other") == "sluice-generic-2026.11.23"
    assert daily("generic", "2026-11-23T10:00:00Z") == "sluice-generic-2026.11.23"
    rollover = IndexNamer(DEFAULT, "rollover", {"app": "app-{log_type}-{yyyy}.{MM}"})
    assert rollover("generic", "2026-11-23T10:00:00Z", "app") == "app-generic"
    assert rollover("generic", "2026-11-23T10:00:00Z", "other") == "sluice-generic"


def _doc(source: str, log_type: str = "generic", doc_id: str = "id1") -> Document:
    return Document(doc_id, log_type, {"@timestamp": "2026-11-23T10:00:00Z", "message": "m"}, AckSet("u"),
                    Origin(source, "sqs"))


@pytest.mark.parametrize(("mode", "index", "alias_only"), [
    ("daily", b"app-generic-2026.11", False),
    ("rollover", b"app-generic", True),
    ("data_stream", b"app-generic", False),
])
async def test_sink_bulk_action_per_mode(mode: str, index: bytes, alias_only: bool) -> None:
    cfg = os_cfg(LifecycleConfig(mode=mode))  # type: ignore[arg-type]
    sink = OpenSearchSink(cfg, None, None, source_indices={"app": "app-{log_type}-{yyyy}.{MM}"})  # type: ignore[arg-type]
    await sink.submit([_doc("app")])
    action = bytes(sink._batch.body).split(b"\n")[0]
    assert action.startswith(b'{"create":{"_index":"' + index + b'","_id":"id1"')
    assert (b'"require_alias":true' in action) is alias_only
    assert sink._batch.index(0) == index.decode()
    assert json.loads(action) is not None  # the action line is JSON whatever the mode


def test_sink_without_lifecycle_config_keeps_daily() -> None:
    cfg = OpenSearchConfig(hosts=["http://x"])
    assert lifecycle_of(cfg) == LifecycleConfig()
    sink = OpenSearchSink(cfg, None, None)  # type: ignore[arg-type]
    assert sink.index_for("alb", "2026-01-02T00:00:00Z") == "sluice-alb-2026.01.02"


# --- config ------------------------------------------------------------------------------------------------


def test_lifecycle_defaults() -> None:
    lc = LifecycleConfig()
    assert (lc.mode, lc.ism, lc.delete_after_days, lc.retention) == ("daily", True, 30, {})
    assert (lc.rollover_max_size, lc.rollover_max_age) == ("30gb", "1d")
    assert lc.warm_after_days is lc.cold_after_days is lc.force_merge_after_days is None
    assert LifecycleConfig(rollover_max_size="50GB").rollover_max_size == "50gb"


@pytest.mark.parametrize(("values", "message"), [
    ({"rollover_max_size": "lots"}, "not a size"),
    ({"rollover_max_age": "1.5d"}, "not an age"),
    ({"retention": {"nope": 3}}, "unknown log type"),
    ({"retention": {"alb": 0}}, "at least 1 day"),
    ({"warm_after_days": 30}, "less than delete_after_days"),
    ({"warm_after_days": 10, "cold_after_days": 5}, "more than warm_after_days"),
    ({"mode": "weekly"}, "mode"),
    ({"delete_after_days": 0}, "delete_after_days"),
    ({"colour": "blue"}, "colour"),
])
def test_lifecycle_validation(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        LifecycleConfig(**values)
    assert message in str(err.value)


def test_every_field_is_documented() -> None:
    for name, field in LifecycleConfig.model_fields.items():
        assert field.description, name


# --- ISM policies ------------------------------------------------------------------------------------------

CONFIGS = [
    LifecycleConfig(),
    LifecycleConfig(mode="rollover"),
    LifecycleConfig(mode="data_stream", rollover_max_size="5gb", rollover_max_age="12h"),
    LifecycleConfig(mode="rollover", warm_after_days=3, cold_after_days=10, force_merge_after_days=2,
                    warm_node_attributes={"temp": "warm"}, cold_node_attributes={"temp": "cold"},
                    delete_after_days=90, retention={"cloudtrail": 365, "vpc_flow": 7}),
    LifecycleConfig(warm_after_days=7, force_merge_after_days=7, delete_after_days=14),
]


def _states(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in body["policy"]["states"]}


@pytest.mark.parametrize("lc", CONFIGS)
@pytest.mark.parametrize("log_type", ["cloudtrail", "vpc_flow", "alb"])
def test_policy_has_the_documented_shape(lc: LifecycleConfig, log_type: str) -> None:
    body = ism_policy(log_type, lc, [f"sluice-{log_type}-*"])
    assert policy_problems(body) == []
    policy = body["policy"]
    assert set(policy) == {"description", "default_state", "states", "ism_template"}
    assert policy["default_state"] == "hot"
    assert policy["ism_template"] == [{"index_patterns": [f"sluice-{log_type}-*"], "priority": ISM_PRIORITY}]
    states = policy["states"]
    names = [s["name"] for s in states]
    assert names[0] == "hot" and names[-1] == "delete" and len(set(names)) == len(names)
    for i, state in enumerate(states):
        assert set(state) == {"name", "actions", "transitions"}
        for action in state["actions"]:
            assert len(action) == 1 and next(iter(action)) in KNOWN_ACTIONS
        if state["name"] == "delete":
            assert state["actions"] == [{"delete": {}}] and state["transitions"] == []
        else:  # a straight line: each state hands over to the next, by age
            (transition,) = state["transitions"]
            assert transition["state_name"] == names[i + 1]
            assert re.fullmatch(r"[1-9]\d*d", transition["conditions"]["min_index_age"])
    ages = [int(s["transitions"][0]["conditions"]["min_index_age"][:-1]) for s in states[:-1]]
    assert ages == sorted(ages)
    assert ages[-1] == lc.retention.get(log_type, lc.delete_after_days)
    rollovers = [a["rollover"] for s in states for a in s["actions"] if "rollover" in a]
    if lc.mode == "daily":
        assert rollovers == []
    else:  # only in hot: the rollover must succeed before the write index can age into anything
        assert _states(body)["hot"]["actions"] == [{"rollover": {"min_size": lc.rollover_max_size,
                                                                  "min_index_age": lc.rollover_max_age}}]


def test_policy_phases_and_retention() -> None:
    lc = CONFIGS[3]
    trail = _states(ism_policy("cloudtrail", lc, ["p"]))
    assert list(trail) == ["hot", "force_merge", "warm", "cold", "delete"]
    assert trail["hot"]["transitions"][0]["conditions"] == {"min_index_age": "2d"}
    assert trail["force_merge"]["actions"] == [{"force_merge": {"max_num_segments": 1}}]
    assert trail["warm"]["actions"] == [{"read_only": {}},
                                        {"allocation": {"require": {"temp": "warm"}, "wait_for": False}}]
    assert trail["cold"]["actions"][:2] == [{"read_only": {}}, {"replica_count": {"number_of_replicas": 0}}]
    assert trail["cold"]["transitions"][0]["conditions"] == {"min_index_age": "365d"}
    # vpc_flow keeps 7 days: the cold phase (day 10) would come after deletion, so it is left out
    flow = _states(ism_policy("vpc_flow", lc, ["p"]))
    assert list(flow) == ["hot", "force_merge", "warm", "delete"]
    assert flow["warm"]["transitions"][0]["conditions"] == {"min_index_age": "7d"}
    assert list(_states(ism_policy("alb", LifecycleConfig(), ["p"]))) == ["hot", "delete"]


def test_policy_description_carries_a_digest_of_the_body() -> None:
    a = ism_policy("alb", LifecycleConfig(), ["p"])["policy"]["description"]
    b = ism_policy("alb", LifecycleConfig(delete_after_days=31), ["p"])["policy"]["description"]
    c = ism_policy("alb", LifecycleConfig(), ["q"])["policy"]["description"]
    assert a == ism_policy("alb", LifecycleConfig(), ["p"])["policy"]["description"]
    assert len({a, b, c}) == 3 and "[sluice " in a


def test_policy_problems_catches_broken_shapes() -> None:
    good = ism_policy("alb", CONFIGS[3], ["p"])
    broken = copy.deepcopy(good)
    broken["policy"]["states"][0]["transitions"][0]["state_name"] = "nowhere"
    assert any("missing state" in p for p in policy_problems(broken))
    broken = copy.deepcopy(good)
    broken["policy"]["states"][1]["actions"].append({"explode": {}})
    assert any("unknown action" in p for p in policy_problems(broken))
    broken = copy.deepcopy(good)
    broken["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"] = "7 days"
    assert any("time value" in p for p in policy_problems(broken))
    broken = copy.deepcopy(good)
    broken["policy"]["default_state"] = "tepid"
    assert any("default_state" in p for p in policy_problems(broken))


# --- templates ---------------------------------------------------------------------------------------------


def test_daily_templates_are_as_before() -> None:
    templates = index_templates(os_cfg())
    assert set(templates) == {f"sluice-{t}" for t in log_types()}
    body = templates["sluice-alb"]
    assert body["index_patterns"] == ["sluice-alb-*.*.*"] and body["priority"] == 200
    assert "data_stream" not in body and ROLLOVER_ALIAS_SETTING not in body["template"]["settings"]
    assert body["_meta"]["managed_by"] == "sluice" and body["_meta"]["log_type"] == "alb"


def test_rollover_templates_name_the_alias() -> None:
    cfg = os_cfg(LifecycleConfig(mode="rollover"))
    body = index_templates(cfg)["sluice-alb"]
    assert body["index_patterns"] == ["sluice-alb-*"]
    assert body["template"]["settings"][ROLLOVER_ALIAS_SETTING] == "sluice-alb"
    without = index_templates(cfg, rollover_alias=False)["sluice-alb"]
    assert ROLLOVER_ALIAS_SETTING not in without["template"]["settings"]
    assert without["_meta"]["digest"] != body["_meta"]["digest"]


def test_data_stream_templates_match_only_the_stream() -> None:
    body = index_templates(os_cfg(LifecycleConfig(mode="data_stream")))["sluice-alb"]
    assert body["data_stream"] == {} and body["index_patterns"] == ["sluice-alb"]
    assert ROLLOVER_ALIAS_SETTING not in body["template"]["settings"]
    assert body["template"]["mappings"]["properties"]["@timestamp"] == {"type": "date"}


def test_source_patterns_get_their_own_templates_and_share_the_policy() -> None:
    cfg = os_cfg(LifecycleConfig(mode="rollover"))
    sources = {"App Logs": "app-{log_type}-{yyyy}.{MM}", "same": DEFAULT, "also": "app-{log_type}-{yyyy}"}
    templates = index_templates(cfg, sources)
    # `same` is the default pattern; `also` comes to the same alias as `App Logs`: one template each
    assert len(templates) == 2 * len(log_types())
    body = templates["sluice-alb--app-logs"]  # named after the first source (sorted) using it
    assert body["index_patterns"] == ["app-alb-*"] and body["priority"] == 210
    assert body["template"]["settings"][ROLLOVER_ALIAS_SETTING] == "app-alb"
    names = {t.write_name for t in targets(cfg, sources) if t.log_type == "alb"}
    assert names == {"sluice-alb", "app-alb"}
    policy = ism_policies(cfg, sources)["sluice-alb"]["policy"]
    assert policy["ism_template"][0]["index_patterns"] == ["sluice-alb-*", "app-alb-*"]


# --- create / update / unchanged ---------------------------------------------------------------------------


def _as_cluster_returns_template(body: dict[str, Any]) -> dict[str, Any]:
    """What `GET _index_template/<name>` gives back for `body`: nested `index.*` settings as strings,
    `composed_of`, the data stream's timestamp field filled in."""
    out = copy.deepcopy(body)
    nested: dict[str, Any] = {}
    for key, value in out["template"]["settings"].items():
        node = nested.setdefault("index", {})
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = str(value).lower() if isinstance(value, bool) else str(value)
    out["template"]["settings"] = nested
    out["composed_of"] = []
    if "data_stream" in out:
        out["data_stream"] = {"timestamp_field": {"name": "@timestamp"}}
    return out


def _as_cluster_returns_policy(body: dict[str, Any], seq_no: int = 7) -> dict[str, Any]:
    """What `GET _plugins/_ism/policies/<id>` gives back: extra fields, a retry per action, template times."""
    policy = copy.deepcopy(body["policy"])
    policy.update(policy_id="p", last_updated_time=1577990934044, schema_version=21, error_notification=None)
    for state in policy["states"]:
        for action in state["actions"]:
            action["retry"] = {"count": 3, "backoff": "exponential", "delay": "1m"}
    for template in policy["ism_template"]:
        template["last_updated_time"] = 1577990934044
    return {"_id": "p", "_version": 2, "_seq_no": seq_no, "_primary_term": 1, "policy": policy}


@pytest.mark.parametrize("mode", ["daily", "rollover", "data_stream"])
def test_template_decision(mode: str) -> None:
    desired = index_templates(os_cfg(LifecycleConfig(mode=mode)))["sluice-alb"]  # type: ignore[arg-type]
    assert template_outcome(None, desired) == "created"
    assert template_outcome(_as_cluster_returns_template(desired), desired) == "unchanged"
    changed = index_templates(os_cfg(LifecycleConfig(mode=mode), number_of_replicas=2))["sluice-alb"]  # type: ignore[arg-type]
    assert template_outcome(_as_cluster_returns_template(desired), changed) == "updated"
    edited = _as_cluster_returns_template(desired)
    edited["template"]["mappings"]["properties"]["source"]["properties"]["ip"] = {"type": "keyword"}
    assert template_outcome(edited, desired) == "updated"


def test_template_decision_sees_a_dropped_setting() -> None:
    """Only our digest tells a setting we no longer want from one the cluster added."""
    cfg = os_cfg(LifecycleConfig(mode="rollover"))
    with_alias = index_templates(cfg)["sluice-alb"]
    without = index_templates(cfg, rollover_alias=False)["sluice-alb"]
    assert template_outcome(_as_cluster_returns_template(with_alias), without) == "updated"


def test_policy_decision() -> None:
    desired = ism_policy("alb", CONFIGS[3], ["sluice-alb-*"])
    assert policy_outcome(None, desired) == "created"
    assert policy_outcome(_as_cluster_returns_policy(desired), desired) == "unchanged"
    put_answer = {"_id": "p", "policy": {"policy": _as_cluster_returns_policy(desired)["policy"]}}
    assert policy_outcome(put_answer, desired) == "unchanged"
    longer = ism_policy("alb", CONFIGS[3].model_copy(update={"delete_after_days": 120}), ["sluice-alb-*"])
    assert policy_outcome(_as_cluster_returns_policy(desired), longer) == "updated"
    edited = _as_cluster_returns_policy(desired)
    edited["policy"]["states"][0]["actions"][0]["rollover"]["min_size"] = "1gb"
    assert policy_outcome(edited, desired) == "updated"
    as_object = _as_cluster_returns_policy(desired)
    as_object["policy"]["ism_template"] = as_object["policy"]["ism_template"][0]
    assert policy_outcome(as_object, desired) == "unchanged"


# --- install against a fake cluster with ISM ----------------------------------------------------------------


def _transport_error(status: int, error: str) -> Exception:
    from opensearchpy.exceptions import HTTP_EXCEPTIONS, TransportError

    cls = HTTP_EXCEPTIONS.get(status, TransportError)
    return cls(status, error, {"error": {"type": error, "reason": error}})


class FakeCluster:
    """`client.transport.perform_request` over index templates, ISM policies (with the seq_no check of
    updates) and indices with aliases, in memory, answering like OpenSearch (404s only when not ignored)."""

    def __init__(self, ism: bool = True) -> None:
        self.ism = ism
        self.templates: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.indices: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, dict[str, str] | None]] = []
        self.transport = self

    def _missing(self, ignore: tuple[int, ...], error: str) -> Any:
        if 404 in ignore:
            return {"error": {"type": error}, "status": 404}
        raise _transport_error(404, error)

    async def perform_request(self, method: str, path: str, params: dict[str, str] | None = None,
                              body: Any = None, ignore: tuple[int, ...] = ()) -> Any:
        parts = path.strip("/").split("/")
        if method in ("PUT", "POST"):
            self.writes.append((method, path, params))
        if parts[0] == "_index_template":
            name = parts[1]
            if method == "PUT":
                self.templates[name] = _as_cluster_returns_template(body)
                return {"acknowledged": True}
            if name not in self.templates:
                return self._missing(ignore, "resource_not_found_exception")
            return {"index_templates": [{"name": name, "index_template": self.templates[name]}]}
        if parts[0] == "_plugins":
            if not self.ism:
                if 400 in ignore:
                    return {"error": f"no handler found for uri [{path}] and method [{method}]"}
                raise _transport_error(400, "no handler found")
            if len(parts) == 3:
                return {"policies": [], "total_policies": len(self.policies)}
            pid = parts[3]
            stored = self.policies.get(pid)
            if method == "GET":
                return stored if stored is not None else self._missing(ignore, "status_exception")
            if stored is not None and (params is None or int(params["if_seq_no"]) != stored["_seq_no"]):
                raise _transport_error(409, "version_conflict_engine_exception")
            seq_no = 0 if stored is None else stored["_seq_no"] + 1
            self.policies[pid] = _as_cluster_returns_policy(body, seq_no)
            return {"_id": pid, "policy": {"policy": self.policies[pid]["policy"]}}
        if parts[0] == "_alias" and method == "HEAD":
            return any(parts[1] in index.get("aliases", {}) for index in self.indices.values())
        if method == "HEAD":
            return parts[0] in self.indices
        if method == "PUT":
            if parts[0] in self.indices:
                raise _transport_error(400, "resource_already_exists_exception")
            self.indices[parts[0]] = body
            return {"acknowledged": True}
        raise AssertionError(f"unexpected request {method} {path}")


async def test_install_twice_then_change_with_ism() -> None:
    cluster = FakeCluster()
    cfg = os_cfg(LifecycleConfig(mode="rollover"))
    lines: list[str] = []
    first = await install(cluster, cfg, {"app": "app-{log_type}-{yyyy}.{MM}"}, lines.append)
    assert first.failures == [] and first.ism is True
    kinds = {item.kind for item in first.items}
    assert kinds == {"index template", "ISM policy", "write alias"}
    assert {item.outcome for item in first.items} == {"created"}
    assert cluster.indices["app-alb-000001"] == {"aliases": {"app-alb": {"is_write_index": True}}}
    assert ROLLOVER_ALIAS_SETTING.split(".")[0] in cluster.templates["sluice-alb"]["template"]["settings"]["index"]
    # policies before any index: ISM only attaches a policy to indices created after it
    order = [path for _, path, _ in cluster.writes]
    assert max(i for i, p in enumerate(order) if "_ism" in p) < min(i for i, p in enumerate(order) if "-000001" in p)

    cluster.writes.clear()
    lines.clear()
    second = await install(cluster, cfg, {"app": "app-{log_type}-{yyyy}.{MM}"}, lines.append)
    assert {item.outcome for item in second.items} == {"unchanged"} and cluster.writes == []
    assert len(second.items) == len(first.items) and all(line.split(": ")[1].startswith("unchanged") for line in lines)

    longer = os_cfg(LifecycleConfig(mode="rollover", retention={"alb": 90}))
    third = await install(cluster, longer, {"app": "app-{log_type}-{yyyy}.{MM}"})
    changed = [(i.kind, i.name) for i in third.items if i.outcome != "unchanged"]
    assert changed == [("ISM policy", "sluice-alb")]
    (write,) = cluster.writes
    assert write == ("PUT", "/_plugins/_ism/policies/sluice-alb", {"if_seq_no": "0", "if_primary_term": "1"})


async def test_install_without_ism_skips_policies_and_the_rollover_alias_setting() -> None:
    cluster = FakeCluster(ism=False)
    lines: list[str] = []
    report = await install(cluster, os_cfg(LifecycleConfig(mode="rollover")), None, lines.append)
    assert report.failures == [] and report.ism is False
    assert ISM_UNSUPPORTED in lines
    assert not any(i.kind == "ISM policy" for i in report.items)
    assert "plugins" not in cluster.templates["sluice-alb"]["template"]["settings"]["index"]
    assert "sluice-alb-000001" in cluster.indices


async def test_install_with_ism_off_installs_no_policy() -> None:
    cluster = FakeCluster()
    report = await install(cluster, os_cfg(LifecycleConfig(ism=False)))
    assert report.failures == [] and cluster.policies == {} and report.ism is None


async def test_install_refuses_patterns_without_log_type() -> None:
    cluster = FakeCluster()
    report = await install(cluster, os_cfg(LifecycleConfig(mode="data_stream")), {"x": "x-{yyyy}"})
    assert report.failures and "sources.x.index" in report.failures[0] and cluster.writes == []


async def test_install_reports_a_plain_index_in_the_aliass_place() -> None:
    cluster = FakeCluster()
    cluster.indices["sluice-alb"] = {}
    report = await install(cluster, os_cfg(LifecycleConfig(mode="rollover")))
    (failed,) = [i for i in report.items if i.outcome == "failed"]
    assert failed.name == "sluice-alb" and "is an index, not an alias" in failed.detail
    assert report.failures == [f"write alias sluice-alb: {failed.detail}"]
    assert "sluice-alb-000001" not in cluster.indices
