"""`sluice setup` against a real server, per lifecycle mode: run twice, the second run reports every item
`unchanged` and changes nothing; in rollover mode the sink then writes through the write aliases.

osmem (the local backend) has no ISM and no data streams: setup says so and skips the policies (exit 0), and
refuses data stream mode (exit 1), which cannot work there. With the docker backend (OpenSearch 2) the ISM
policies and data streams are installed and checked the same way.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import make_config, os_client
from worker.config import Config
from worker.model import AckSet, Document, Origin
from worker.setup import ISM_UNSUPPORTED, setup, source_indices
from worker.sinks.lifecycle import LifecycleConfig, bootstrap_index
from worker.sinks.opensearch import OpenSearchSink, build_client
from worker.sinks.templates import index_templates, targets

ITEM = re.compile(r"^(index template|ISM policy|write alias|data stream) (\S+): (created|updated|unchanged)\b")


def _config(opensearch_url: str, prefix: str, mode: str) -> Config:
    """A config with a second source that has its own index pattern, in the given lifecycle mode."""
    cfg = make_config(aws_endpoint="http://127.0.0.1:1", opensearch_url=opensearch_url, queue_url="http://unused",
                      backup_bucket="unused", replay_queue_url="http://unused", index_prefix=prefix,
                      sources__app={"type": "sqs", "queue_url": "http://unused",
                                    "index": prefix + "-app-{log_type}-{yyyy}.{MM}"})
    # Works whether or not OpenSearchConfig declares `lifecycle` yet (the code reads it with getattr).
    opensearch = cfg.opensearch.model_copy(update={"lifecycle": LifecycleConfig(mode=mode)})  # type: ignore[arg-type]
    return cfg.model_copy(update={"opensearch": opensearch})


async def _run(cfg: Config, capsys: Any) -> tuple[int, list[str]]:
    code = await setup(cfg)
    return code, capsys.readouterr().out.splitlines()


def _items(lines: list[str]) -> dict[tuple[str, str], str]:
    out = {}
    for line in lines:
        m = ITEM.match(line)
        if m:
            out[(m[1], m[2])] = m[3]
    return out


def _state(client: Any, cfg: Config, prefix: str) -> dict[str, Any]:
    """Everything setup may touch, as the cluster reports it."""
    names = index_templates(cfg.opensearch, source_indices(cfg))
    state: dict[str, Any] = {"templates": {n: client.indices.get_index_template(name=n) for n in names}}
    if client.indices.exists(index=f"{prefix}-*"):
        state["indices"] = client.indices.get(index=f"{prefix}-*")
    policies = {}
    for name in {f"sluice-{t.log_type}" for t in targets(cfg.opensearch)}:
        try:
            policies[name] = client.transport.perform_request("GET", f"/_plugins/_ism/policies/{name}")
        except Exception:
            policies[name] = None
    state["policies"] = policies
    return state


def _expected_items(cfg: Config, mode: str, ism: bool) -> set[tuple[str, str]]:
    tgts = targets(cfg.opensearch, source_indices(cfg))
    out = {("index template", t.template) for t in tgts}
    if ism:
        out |= {("ISM policy", f"sluice-{t.log_type}") for t in tgts}
    kind = {"rollover": "write alias", "data_stream": "data stream"}.get(mode)
    if kind:
        out |= {(kind, t.write_name) for t in tgts if t.write_name}
    return out


@pytest.mark.parametrize("mode", ["daily", "rollover"])
async def test_setup_twice_changes_nothing_the_second_time(opensearch_url: str, backend_kind: str,
                                                           unique_name: Any, capsys: Any, mode: str) -> None:
    prefix = unique_name(f"setup-{mode}")
    cfg = _config(opensearch_url, prefix, mode)
    ism = backend_kind == "docker"
    client = os_client(opensearch_url)

    code, first = await _run(cfg, capsys)
    assert code == 0, first
    assert set(_items(first)) == _expected_items(cfg, mode, ism)
    assert (ISM_UNSUPPORTED in first) is not ism
    before = _state(client, cfg, prefix)

    code, second = await _run(cfg, capsys)
    assert code == 0, second
    items = _items(second)
    assert set(items) == _expected_items(cfg, mode, ism)
    assert set(items.values()) == {"unchanged"}, [line for line in second if "unchanged" not in line]
    assert len(second) == len(first)
    assert _state(client, cfg, prefix) == before

    if mode == "rollover":
        for alias in (f"{prefix}-alb", f"{prefix}-app-alb"):
            assert client.indices.get_alias(name=alias) == {bootstrap_index(alias): {"aliases": {
                alias: {"is_write_index": True}}}}


class _NoDeadLetters:
    """The sink must not reject anything here; if it does, the test sees it."""

    def __init__(self) -> None:
        self.letters: list[Any] = []

    async def add(self, letter: Any, ack: Any) -> None:
        self.letters.append(letter)

    def add_nowait(self, letter: Any, ack: Any) -> None:
        self.letters.append(letter)


async def test_rollover_sink_writes_through_the_aliases(opensearch_url: str, unique_name: Any,
                                                        capsys: Any) -> None:
    prefix = unique_name("rollover-sink")
    cfg = _config(opensearch_url, prefix, "rollover")
    assert await setup(cfg) == 0
    capsys.readouterr()

    async def write(ids: range) -> dict[str, int]:
        client = build_client(cfg.opensearch, "us-east-1")
        dead = _NoDeadLetters()
        ack = AckSet("unit")
        docs = []
        for i in ids:
            source = "app" if i % 2 else "logs"
            docs.append(Document(f"id-{i}", "generic", {"@timestamp": f"2020-01-0{1 + i % 9}T00:00:00Z",
                                                         "message": f"line {i}"}, ack, Origin(source, "sqs")))
        ack.add(len(docs))
        try:
            async with OpenSearchSink(cfg.opensearch, dead, client, source_indices=source_indices(cfg)) as sink:
                await sink.submit(docs)
            ack.seal()
            assert await ack.wait(), ack
        finally:
            await client.close()
        assert dead.letters == []
        return {o.value: n for o, n in ack.counts.items() if n}

    assert await write(range(10)) == {"delivered": 10}
    assert await write(range(10)) == {"delivered": 10}  # redelivered: 409s, not duplicates

    client = os_client(opensearch_url)
    client.indices.refresh(index=f"{prefix}-*")
    assert client.count(index=f"{prefix}-generic-000001")["count"] == 5
    assert client.count(index=f"{prefix}-app-generic-000001")["count"] == 5
    # nothing was auto-created under the alias names or per day
    assert sorted(i for i in client.indices.get(index=f"{prefix}-*") if "generic" in i) == [
        f"{prefix}-app-generic-000001", f"{prefix}-generic-000001"]


async def test_rollover_setup_refuses_a_plain_index_in_the_aliass_place(opensearch_url: str, unique_name: Any,
                                                                         capsys: Any) -> None:
    prefix = unique_name("rollover-clash")
    cfg = _config(opensearch_url, prefix, "rollover")
    client = os_client(opensearch_url)
    client.indices.create(index=f"{prefix}-alb")
    code, lines = await _run(cfg, capsys)
    assert code == 1
    (line,) = [x for x in lines if x.startswith(f"write alias {prefix}-alb:")]
    assert "failed" in line and "is an index, not an alias" in line
    assert not client.indices.exists(index=bootstrap_index(f"{prefix}-alb"))
    assert client.indices.exists_alias(name=f"{prefix}-waf")  # the others were still bootstrapped


async def test_data_stream_mode(opensearch_url: str, backend_kind: str, unique_name: Any, capsys: Any) -> None:
    prefix = unique_name("setup-ds")
    cfg = _config(opensearch_url, prefix, "data_stream")
    code, first = await _run(cfg, capsys)
    templates = {(k, n) for k, n in _items(first) if k == "index template"}
    assert templates == {("index template", t.template) for t in targets(cfg.opensearch, source_indices(cfg))}
    if backend_kind == "local":  # osmem: templates go in, but it cannot hold a data stream
        assert code == 1
        assert any(line.startswith("data streams not supported by this cluster") for line in first)
        return
    assert code == 0, first
    code, second = await _run(cfg, capsys)
    assert code == 0 and set(_items(second).values()) == {"unchanged"}
    assert any(line.startswith(f"data stream {prefix}-alb: unchanged") for line in second)
