"""`type: sqs`: log lines in SQS message bodies (plain, base64, base64 of gzip) -> OpenSearch, via moto and osmem."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import pytest

from tests.support import (
    backup_records,
    count,
    drained,
    make_config,
    os_client,
    queue_depth,
    run_worker_until,
    scroll_hits,
)
from worker.model import Origin
from worker.samples import vpc_flow_lines


@pytest.fixture
def env(aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any, unique_name: Any) -> dict[str, Any]:
    sqs = boto.client("sqs")
    name = unique_name("lines")
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    prefix = unique_name("sqs")
    return {
        "sqs": sqs, "s3": boto.client("s3"), "os": os_client(opensearch_url), "prefix": prefix, "queue": url,
        "name": name, "backup": backup,
        "cfg": lambda **src: make_config(
            aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=url, backup_bucket=backup.bucket,
            replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
            sources={"lines": {"type": "sqs", "queue_url": url, "wait_time": 1, **src}}),
    }


async def test_plain_base64_and_gzip_bodies(env: dict[str, Any]) -> None:
    lines = list(vpc_flow_lines(30, seed=3))[1:]
    sqs, url = env["sqs"], env["queue"]
    sent = {
        "plain": sqs.send_message(QueueUrl=url, MessageBody="\n".join(lines[:10]))["MessageId"],
        "base64": sqs.send_message(QueueUrl=url, MessageBody=base64.b64encode(
            "\n".join(lines[10:20]).encode()).decode())["MessageId"],
        "gzip": sqs.send_message(QueueUrl=url, MessageBody=base64.b64encode(gzip.compress(
            "\n".join(lines[20:]).encode())).decode())["MessageId"],
    }
    app = sqs.send_message(QueueUrl=url, MessageBody='{"level":"error","msg":"payment failed","order":42}')
    await run_worker_until(env["cfg"](), drained(sqs, url), timeout=60, settle=1.0)

    docs = scroll_hits(env["os"], env["prefix"])
    vpc = [d for d in docs if "-vpc_flow-" in d["_index"]]
    assert sorted(d["_source"]["source"]["ip"] for d in vpc) == sorted(line.split()[3] for line in lines)
    # Ids: message id + line offset, so a redelivered message makes the same documents.
    ids = {d["_id"] for d in vpc}
    offsets = []
    at = 0
    for line in lines[:10]:
        offsets.append(at)
        at += len(line) + 1
    plain_prefix = Origin("lines", "sqs", key=env["name"], version=sent["plain"]).id_prefix()
    assert {f"{plain_prefix}.{o}" for o in offsets} <= ids
    # A message no parser recognises falls back to `generic` (the source's default), JSON decoded.
    generic = [d["_source"] for d in docs if "-generic-" in d["_index"]]
    assert len(generic) == 1 and generic[0]["message"] == "payment failed" and generic[0]["log"]["level"] == "error"
    assert app["MessageId"]
    assert queue_depth(sqs, url) == 0
    assert backup_records(env["s3"], env["backup"].bucket) == ([], [])


async def test_undecodable_body_is_dead_lettered_and_deleted(env: dict[str, Any]) -> None:
    sqs, url = env["sqs"], env["queue"]
    bad = base64.b64encode(b"\x1f\x8b\x08\x00" + b"not really gzip at all").decode()
    sqs.send_message(QueueUrl=url, MessageBody=bad)
    sqs.send_message(QueueUrl=url, MessageBody=next(iter(vpc_flow_lines(1, seed=8))))
    await run_worker_until(env["cfg"](log_type="vpc_flow"), drained(sqs, url), timeout=60, settle=1.0)
    records, _ = backup_records(env["s3"], env["backup"].bucket)
    reasons = sorted(r["reason"] for r in records)
    assert "decode_error" in reasons
    decode = next(r for r in records if r["reason"] == "decode_error")
    assert decode["raw"] == bad and decode["origin"]["encoding"] == "base64"
    assert count(env["os"], env["prefix"]) == 0  # the header line is not an event; the bad body is kept, not lost


async def test_processing_options_through_a_real_queue(env: dict[str, Any]) -> None:
    """Multiline, exclude, JSON expansion and tags applied to message bodies, end to end."""
    sqs, url = env["sqs"], env["queue"]
    trace = ("2026-11-22 10:00:01 ERROR request failed\njava.lang.IllegalStateException: boom\n"
             "    at com.example.Orders.place(Orders.java:42)\n2026-11-22 10:00:02 DEBUG noisy\n"
             "2026-11-22 10:00:03 INFO done")
    sqs.send_message(QueueUrl=url, MessageBody=trace)
    processing = {"multiline": {"pattern": r"^(\s+at |[\w.]+Exception)", "match": "after"},
                  "exclude": ["DEBUG"], "tags": ["orders"], "fields": {"service.name": "orders"}}
    await run_worker_until(env["cfg"](log_type="generic", processing=processing), drained(sqs, url), timeout=60,
                           settle=1.0)
    docs = sorted((d["_source"] for d in scroll_hits(env["os"], env["prefix"])), key=lambda d: d["message"])
    assert [d["message"].split("\n")[0] for d in docs] == ["2026-11-22 10:00:01 ERROR request failed",
                                                           "2026-11-22 10:00:03 INFO done"]
    assert docs[0]["message"].count("\n") == 2
    assert all(d["tags"] == ["orders"] and d["service"]["name"] == "orders" for d in docs)
