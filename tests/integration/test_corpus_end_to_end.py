"""Every corpus sample through the S3 notification path into type-correct fields, on real servers.

Each sample is put to the emulated S3 under the key AWS would give it (or a neutral key, so that the type is
found from the content), S3 notifies SQS, and the worker indexes everything. What must come out is what the
parsers make of the same files locally (tests/corpus.py `account`): the same number of documents per log
type, every failure in the backup bucket, nothing kept whole as unknown, the queue empty. Then the fields must
be typed as the templates say, which an ip range query and a sum aggregation over bytes prove on real values.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from tests.corpus import CORPUS, account, raw_inputs, s3_key_for
from tests.support import backup_records, drained, index_counts, make_config, os_client, queue_depth, run_worker_until
from worker.parsers import get_parser
from worker.parsers._fields import flatten
from worker.sinks.templates import COMMON_FIELDS

TYPED = ("ip", "long", "integer", "double", "float", "boolean", "date")
NET = ipaddress.ip_network("10.0.0.0/8")


def _mapped_type(properties: dict[str, Any], dotted: str) -> str | None:
    node: Any = {"properties": properties}
    for part in dotted.split("."):
        node = node.get("properties", {}).get(part)
        if node is None:
            return None
    return node.get("type", "object")


def _in_net(value: Any) -> bool:
    try:
        return ipaddress.ip_address(value) in NET
    except (TypeError, ValueError):
        return False


async def test_every_corpus_sample_is_indexed_with_typed_fields(aws_endpoint: str, opensearch_url: str, boto: Any,
                                                                s3_queue: Any, backup: Any, unique_name: Any) -> None:
    s3, sqs, client = boto.client("s3"), boto.client("sqs"), os_client(opensearch_url)
    prefix = unique_name("corpus")
    expected_docs: Counter[str] = Counter()
    expected_failures = 0
    expected_bytes = 0
    expected_in_net = 0
    for relative in raw_inputs():
        outcome = account(relative)
        if not outcome["skip"]:
            expected_docs.update(doc_type for _o, _s, doc_type, _d in outcome["docs"])
            expected_failures += len(outcome["failures"])
            for _o, _s, _t, doc in outcome["docs"]:
                flat = flatten(doc)
                expected_bytes += flat.get("source.bytes") or 0
                expected_in_net += _in_net(flat.get("source.ip"))
        s3.put_object(Bucket=s3_queue.bucket, Key=s3_key_for(relative), Body=(CORPUS / relative).read_bytes())

    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
                      backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                      sources__logs__fallback_log_type="generic")
    await run_worker_until(cfg, drained(sqs, s3_queue.queue_url), timeout=240)

    counts: Counter[str] = Counter()
    for name, n in index_counts(client, prefix).items():
        counts[name[len(prefix) + 1 :].rsplit("-", 1)[0]] += n
    assert dict(counts) == dict(expected_docs)
    assert expected_in_net > 0 and expected_bytes > 0, "the corpus should exercise both checks"
    records, objects = backup_records(s3, backup.bucket)
    assert objects == [], "no object should be kept whole (unknown type or undecodable)"
    assert len(records) == expected_failures
    assert all(r["reason"] == "parse_error" and r["detail"] for r in records), records[:3]
    assert queue_depth(sqs, s3_queue.queue_url) == 0

    # Typed fields, in every index of every type, exactly as the templates declare them.
    for log_type in counts:
        pattern = f"{prefix}-{log_type}-*"
        declared = {**COMMON_FIELDS, **get_parser(log_type).fields}
        for index, body in client.indices.get_mapping(index=pattern).items():
            properties = body["mappings"]["properties"]
            for field, kind in declared.items():
                if kind in TYPED:
                    mapped = _mapped_type(properties, field)
                    assert mapped in (None, kind), f"{index}: {field} mapped {mapped}, declared {kind}"

    everything = f"{prefix}-*"
    agg = client.search(index=everything, body={"size": 0, "aggs": {"b": {"sum": {"field": "source.bytes"}}}})
    assert agg["aggregations"]["b"]["value"] == expected_bytes
    in_net = client.count(index=everything, body={"query": {"term": {"source.ip": str(NET)}}})["count"]
    assert in_net == expected_in_net


async def test_setup_installs_a_typed_template_for_every_log_type(aws_endpoint: str, opensearch_url: str,
                                                                   unique_name: Any,
                                                                   capsys: Any) -> None:
    """`sluice setup`: one template per type; an index created under each pattern gets the declared types."""
    from worker.parsers import log_types
    from worker.setup import setup

    prefix = unique_name("tpl")
    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url="http://unused",
                      backup_bucket="unused", replay_queue_url="http://unused", index_prefix=prefix)
    assert await setup(cfg) == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("index template ") for line in out.splitlines()) == len(log_types()), out
    client = os_client(opensearch_url)
    for log_type in log_types():
        index = f"{prefix}-{log_type}-2026.11.23"
        client.indices.create(index=index)
        properties = client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        declared = {**COMMON_FIELDS, **get_parser(log_type).fields}
        typed = {f: k for f, k in declared.items() if k in TYPED}
        assert typed, log_type
        for field, kind in typed.items():
            assert _mapped_type(properties, field) == kind, f"{log_type}: {field}"
        flattened = [f for f, k in declared.items() if k == "flattened"]
        for field in flattened:
            assert _mapped_type(properties, field) == "flat_object", f"{log_type}: {field}"
