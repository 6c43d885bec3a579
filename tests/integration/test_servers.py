"""The emulators behave the way the worker relies on; if one of these fails, fix the fixtures first.

They run on both backends unless a test is about our process handling (local only). Exact moto quirks
(key encoding with `%2F`) are asserted only on the local backend.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, unquote_plus

import pytest
from opensearchpy import OpenSearch

from worker.local_servers import ManagedProcess, MotoServer, OsmemProcess

if TYPE_CHECKING:  # conftest is not importable at run time (pytest loads it under its own name)
    from tests.conftest import Backend, Backup, Boto, S3Queue

# Spaces, a plus, reserved and non-ASCII characters: every way a key can be mangled in transit.
AWKWARD_KEY = "AWSLogs/123456789012/elb/us-east-1/2024/01/02/a b+c=d:é~(1).log.gz"


def _receive(sqs: Any, queue_url: str, *, wait: int = 1, **kw: Any) -> list[dict[str, Any]]:
    resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, **kw)
    messages: list[dict[str, Any]] = resp.get("Messages", [])
    return messages


def _request(url: str, *, method: str = "GET", body: bytes | None = None, **headers: str) -> Any:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _bulk(url: str, lines: list[dict[str, Any]], **headers: str) -> Any:
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return _request(f"{url}/_bulk", method="POST", body=body, **{"Content-Type": "application/x-ndjson", **headers})


# -- fixtures themselves -------------------------------------------------------------------------------


def test_aws_env_is_dummy_for_the_session(aws_endpoint: str) -> None:
    assert aws_endpoint.startswith("http://")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


def test_unique_names_are_bucket_safe(unique_name: Callable[[str], str]) -> None:
    a, b = unique_name("My_Prefix"), unique_name("My_Prefix")
    assert a != b
    for name in (a, b):
        assert name == name.lower()
        assert 3 <= len(name) <= 63
        assert all(c.isalnum() or c == "-" for c in name)


# -- S3 -> SQS ----------------------------------------------------------------------------------------


def test_put_object_notifies_queue_with_quote_plus_key(s3_queue: S3Queue, boto: Boto, backend_kind: Backend) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    s3.put_object(Bucket=s3_queue.bucket, Key=AWKWARD_KEY, Body=b"hello\n")

    messages = _receive(sqs, s3_queue.queue_url, wait=5)
    assert len(messages) == 1
    (record,) = json.loads(messages[0]["Body"])["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == s3_queue.bucket
    assert record["s3"]["object"]["size"] == 6
    key = record["s3"]["object"]["key"]
    assert unquote_plus(key) == AWKWARD_KEY
    assert " " not in key
    if backend_kind == "local":
        # moto encodes "/" too (real S3 does not); unquote_plus handles both.
        assert key == quote_plus(AWKWARD_KEY)


def test_one_record_per_put(s3_queue: S3Queue, boto: Boto) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    keys = [f"logs/{i}.gz" for i in range(3)]
    for key in keys:
        s3.put_object(Bucket=s3_queue.bucket, Key=key, Body=b"x")
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while len(seen) < len(keys) and time.monotonic() < deadline:
        for msg in _receive(sqs, s3_queue.queue_url):
            seen += [unquote_plus(r["s3"]["object"]["key"]) for r in json.loads(msg["Body"])["Records"]]
            sqs.delete_message(QueueUrl=s3_queue.queue_url, ReceiptHandle=msg["ReceiptHandle"])
    assert sorted(seen) == keys


# -- SQS semantics the worker relies on --------------------------------------------------------------


def test_visibility_change_and_batch_delete(s3_queue: S3Queue, boto: Boto) -> None:
    sqs = boto.client("sqs")
    url = s3_queue.queue_url
    sqs.send_message(QueueUrl=url, MessageBody="one")
    (msg,) = _receive(sqs, url)
    assert _receive(sqs, url, wait=0) == []  # in flight: invisible for the queue's 30 s

    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    (again,) = _receive(sqs, url, wait=0, AttributeNames=["ApproximateReceiveCount"])
    assert again["Body"] == "one"
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"

    resp = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "ok", "ReceiptHandle": again["ReceiptHandle"]}, {"Id": "bad", "ReceiptHandle": "junk"}],
    )
    assert [e["Id"] for e in resp["Successful"]] == ["ok"]
    assert [e["Id"] for e in resp.get("Failed", [])] == ["bad"]
    assert resp["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"

    # The batch delete did delete it: neither visible nor in flight, and its handle is now invalid.
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0)


def test_long_poll_waits_then_wakes_on_send(s3_queue: S3Queue, boto: Boto) -> None:
    sqs = boto.client("sqs")
    started = time.monotonic()
    assert _receive(sqs, s3_queue.queue_url, wait=1) == []
    assert time.monotonic() - started >= 0.9

    timer = threading.Timer(0.5, lambda: sqs.send_message(QueueUrl=s3_queue.queue_url, MessageBody="late"))
    timer.start()
    try:
        started = time.monotonic()
        messages = _receive(sqs, s3_queue.queue_url, wait=10)
        elapsed = time.monotonic() - started
    finally:
        timer.join()
    assert [m["Body"] for m in messages] == ["late"]
    assert elapsed < 5


def test_redrive_to_dlq_after_max_receive_count(s3_queue: S3Queue, boto: Boto) -> None:
    sqs = boto.client("sqs")
    sqs.send_message(QueueUrl=s3_queue.queue_url, MessageBody="poison")
    for attempt in range(1, s3_queue.max_receive_count + 1):
        got = _receive(sqs, s3_queue.queue_url, wait=1, VisibilityTimeout=0)
        assert [m["Body"] for m in got] == ["poison"], f"receive #{attempt}"
    # The next receive moves it instead of returning it.
    assert _receive(sqs, s3_queue.queue_url, wait=0, VisibilityTimeout=0) == []
    assert [m["Body"] for m in _receive(sqs, s3_queue.dlq_url, wait=2)] == ["poison"]


def test_backup_fixture(backup: Backup, boto: Boto) -> None:
    boto.client("s3").head_bucket(Bucket=backup.bucket)
    boto.client("sqs").send_message(QueueUrl=backup.replay_queue_url, MessageBody="{}")
    assert len(_receive(boto.client("sqs"), backup.replay_queue_url)) == 1


# -- OpenSearch -----------------------------------------------------------------------------------------


def test_bulk_create_and_duplicate_is_409(opensearch_url: str, unique_name: Callable[[str], str]) -> None:
    index = unique_name("bulk")
    resp = _bulk(
        opensearch_url,
        [
            {"create": {"_index": index, "_id": "a"}},
            {"message": "first", "n": 1},
            {"create": {"_index": index, "_id": "b"}},
            {"message": "second", "n": 2},
            {"create": {"_index": index, "_id": "a"}},
            {"message": "duplicate", "n": 3},
        ],
    )
    assert resp["errors"] is True
    statuses = [item["create"]["status"] for item in resp["items"]]
    assert statuses == [201, 201, 409]
    assert resp["items"][2]["create"]["error"]["type"] == "version_conflict_engine_exception"

    client = OpenSearch(hosts=[opensearch_url])
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 2
    assert client.get(index=index, id="a")["_source"]["message"] == "first"


def test_bulk_accepts_gzip_body(opensearch_url: str, unique_name: Callable[[str], str]) -> None:
    index = unique_name("gzip")
    plain = "".join(
        json.dumps(line) + "\n" for i in range(50) for line in ({"create": {"_index": index}}, {"n": i})
    ).encode()
    resp = _request(
        f"{opensearch_url}/_bulk?refresh=true",
        method="POST",
        body=gzip.compress(plain),
        **{"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert resp["errors"] is False
    assert len(resp["items"]) == 50
    assert OpenSearch(hosts=[opensearch_url]).count(index=index)["count"] == 50


def test_bulk_without_final_newline_is_rejected_whole(opensearch_url: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        _request(
            f"{opensearch_url}/_bulk",
            method="POST",
            body=b'{"create":{"_index":"never"}}\n{"n":1}',
            **{"Content-Type": "application/x-ndjson"},
        )
    assert err.value.code == 400


# -- our process handling (local only) -----------------------------------------------------------------


def test_osmem_stop_and_restart_on_same_port(private_opensearch: OsmemProcess) -> None:
    url, old_pid = private_opensearch.url, private_opensearch.pid
    assert _bulk(url, [{"create": {"_index": "kept", "_id": "1"}}, {"n": 1}])["errors"] is False

    private_opensearch.stop()
    assert not private_opensearch.running
    with pytest.raises(urllib.error.URLError):
        _request(url + "/")

    private_opensearch.start()
    assert private_opensearch.url == url
    assert private_opensearch.pid != old_pid
    # In memory only: the index is gone, and the id can be created again.
    assert _bulk(url, [{"create": {"_index": "kept", "_id": "1"}}, {"n": 1}])["items"][0]["create"]["status"] == 201


def test_session_osmem_restart_keeps_url(osmem: OsmemProcess, opensearch_url: str) -> None:
    osmem.restart()
    assert osmem.url == opensearch_url
    assert _request(opensearch_url + "/")["version"]["distribution"] == "opensearch"


def test_paused_osmem_hangs_then_resumes(private_opensearch: OsmemProcess) -> None:
    _bulk(private_opensearch.url, [{"create": {"_index": "p", "_id": "1"}}, {"n": 1}])
    private_opensearch.pause()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(private_opensearch.url + "/", timeout=0.5)
    private_opensearch.resume()
    # The state survived the pause, unlike a restart.
    assert _request(private_opensearch.url + "/p/_doc/1")["found"] is True


def test_moto_restart_on_same_port_forgets_state(private_moto: MotoServer, unique_name: Callable[[str], str]) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=private_moto.endpoint_url, region_name="us-east-1")
    bucket = unique_name("gone")
    s3.create_bucket(Bucket=bucket)
    private_moto.restart()
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.create_bucket(Bucket=bucket)
    private_moto.reset()
    assert s3.list_buckets()["Buckets"] == []


def test_stop_escalates_to_sigkill() -> None:
    code = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('up', flush=True); time.sleep(60)"
    )
    popen = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    with ManagedProcess(popen) as proc:
        assert popen.stdout is not None and popen.stdout.readline() == b"up\n"
        started = time.monotonic()
        assert proc.stop(timeout=0.5) == -signal.SIGKILL
        assert time.monotonic() - started < 5
        assert not proc.running
    popen.stdout.close()
