"""The benchmark's in-memory S3 + SQS server (worker/bench/aws_stub.py), driven over HTTP by sync botocore.

The stub is only useful if botocore and the worker cannot tell it from the real services for what they use:
these tests start it as its own process on a free port and check the outcomes a client sees (bodies, ETags,
errors and their codes, notifications the worker's parser reads, visibility timeouts, long polls, redrive),
then run the worker itself against it through the bench's small-objects phase.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from worker.bench.aws_stub import decode_aws_chunked
from worker.local_servers import DUMMY_AWS_ENV
from worker.sources.s3_events import parse_notification

REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "worker.bench.aws_stub", "--port", "0"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert line, "the AWS stub did not print its ready line"
        yield str(json.loads(line)["url"])
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def _client(endpoint: str, service: str) -> Any:
    session = botocore.session.get_session()
    return session.create_client(service, region_name=REGION, endpoint_url=endpoint,
                                 aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                                 config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    return _client(endpoint, "s3")


@pytest.fixture(scope="module")
def sqs(endpoint: str) -> Any:
    return _client(endpoint, "sqs")


_names = iter(range(1, 1_000_000))


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def _receive(sqs: Any, url: str, wait: int = 0, n: int = 10, **kw: Any) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, WaitTimeSeconds=wait,
                                                     MessageSystemAttributeNames=["All"], **kw).get("Messages", [])
    return msgs


# --- S3 ------------------------------------------------------------------------------------------------------


def test_objects_round_trip_with_md5_etags(s3: Any) -> None:
    bucket = _name("bucket")
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    body = gzip.compress(b"line\n" * 5000)
    put = s3.put_object(Bucket=bucket, Key="a b/c=d+e.gz", Body=body, ContentType="application/gzip",
                        Metadata={"who": "test"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="a b/c=d+e.gz")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == len(body)
    assert got["ContentType"] == "application/gzip"
    assert got["Metadata"] == {"who": "test"}
    assert abs(got["LastModified"].timestamp() - time.time()) < 60
    head = s3.head_object(Bucket=bucket, Key="a b/c=d+e.gz")
    assert (head["ContentLength"], head["ETag"]) == (len(body), put["ETag"])
    part = s3.get_object(Bucket=bucket, Key="a b/c=d+e.gz", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
    # A streamed (file-like) body may arrive aws-chunked with a trailing checksum: the stored bytes are the same.
    big = bytes(range(256)) * 20_000
    s3.put_object(Bucket=bucket, Key="big", Body=io.BytesIO(big))
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == big


def test_s3_errors_carry_the_codes_the_worker_checks(s3: Any) -> None:
    bucket = _name("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="missing")
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket=bucket, Key="missing")
    assert head.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as changed:
        s3.get_object(Bucket=bucket, Key="k", IfMatch='"not-the-etag"')
    assert changed.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.get_object(Bucket=_name("nobucket"), Key="k")
    with pytest.raises(ClientError) as unsupported:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert unsupported.value.response["Error"]["Code"] == "NotImplemented"


def test_listing_copy_delete_and_multipart(s3: Any) -> None:
    bucket = _name("bucket")
    s3.create_bucket(Bucket=bucket)
    keys = [f"logs/2026/{i:02d}.gz" for i in range(7)] + ["other/x", "logs/odd key+1"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="logs/",
                                                         PaginationConfig={"PageSize": 3})
    listed = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert listed == sorted(k for k in keys if k.startswith("logs/"))
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["logs/", "other/"]

    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "logs/odd key+1"},
                            Metadata={"sluice-reason": "x"}, MetadataDirective="REPLACE")
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"logs/odd key+1").hexdigest()}"'
    assert s3.head_object(Bucket=bucket, Key="copy")["Metadata"] == {"sluice-reason": "x"}
    s3.delete_object(Bucket=bucket, Key="copy")
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "other/x"}, {"Key": "logs/2026/00.gz"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["logs/2026/00.gz", "other/x"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == len(keys) - 2

    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts = [b"a" * (5 << 20), b"tail"]
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=i + 1, Body=p)["ETag"]
             for i, p in enumerate(parts)]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"ETag": e, "PartNumber": i + 1} for i, e in enumerate(etags)]})
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert done["ETag"] == f'"{expected}-2"'
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)


def test_aws_chunked_bodies_are_decoded() -> None:
    body = b"5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    assert decode_aws_chunked(body) == b"hello world"


# --- notifications -------------------------------------------------------------------------------------------


def _bucket_with_queue(s3: Any, sqs: Any, **filters: str) -> tuple[str, str]:
    bucket = _name("bucket")
    s3.create_bucket(Bucket=bucket)
    url = sqs.create_queue(QueueName=_name("notes"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    config: dict[str, Any] = {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}
    if filters:
        config["Filter"] = {"Key": {"FilterRules": [{"Name": k, "Value": v} for k, v in filters.items()]}}
    s3.put_bucket_notification_configuration(Bucket=bucket,
                                             NotificationConfiguration={"QueueConfigurations": [config]})
    return bucket, url


def test_notifications_have_the_s3_event_shape_the_worker_reads(s3: Any, sqs: Any) -> None:
    bucket, url = _bucket_with_queue(s3, sqs)
    test_event = _receive(sqs, url)
    assert len(test_event) == 1
    assert json.loads(test_event[0]["Body"])["Event"] == "s3:TestEvent"
    assert parse_notification(test_event[0]["Body"]).test_event
    sqs.delete_message(QueueUrl=url, ReceiptHandle=test_event[0]["ReceiptHandle"])

    key = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/22/a b=c+d.log.gz"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=b"payload")["ETag"].strip('"')
    [msg] = _receive(sqs, url, wait=1)
    record = json.loads(msg["Body"])["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["object"]["key"] == ("AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/22/"
                                             "a+b%3Dc%2Bd.log.gz")  # URL-encoded as S3 does, `/` kept
    note = parse_notification(msg["Body"])
    assert [(o.bucket, o.key, o.size, o.etag) for o in note.objects] == [(bucket, key, 7, etag)]

    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": key})
    [copy] = _receive(sqs, url, wait=1)
    assert json.loads(copy["Body"])["Records"][0]["eventName"] == "ObjectCreated:Copy"


def test_notification_filters_are_honoured(s3: Any, sqs: Any) -> None:
    bucket, url = _bucket_with_queue(s3, sqs, prefix="logs/", suffix=".gz")
    _receive(sqs, url)  # the test event
    for key in ("logs/a.gz", "logs/b.txt", "other/c.gz"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    bodies = [json.loads(m["Body"]) for m in _receive(sqs, url, wait=1)]
    assert [b["Records"][0]["s3"]["object"]["key"] for b in bodies] == ["logs/a.gz"]


# --- SQS -----------------------------------------------------------------------------------------------------


def test_send_receive_delete_in_batches(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    sent = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
    assert len(sent["Successful"]) == 10 and not sent.get("Failed")
    assert sent["Successful"][0]["MD5OfMessageBody"] == hashlib.md5(b"m0").hexdigest()
    msgs = _receive(sqs, url, n=7)
    assert [m["Body"] for m in msgs] == [f"m{i}" for i in range(7)]
    assert msgs[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert int(msgs[0]["Attributes"]["SentTimestamp"]) > 1_600_000_000_000
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("3", "7")
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        *({"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)),
        {"Id": "bad", "ReceiptHandle": "garbage"}])
    assert len(deleted["Successful"]) == 7
    assert [(f["Id"], f["Code"]) for f in deleted["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
    with pytest.raises(ClientError) as too_many:
        _receive(sqs, url, n=11)
    assert too_many.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_visibility_timeout_hides_then_redelivers(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=_name("q"), Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="once")
    [first] = _receive(sqs, url)
    assert _receive(sqs, url) == []  # in flight: invisible
    time.sleep(1.2)
    [again] = _receive(sqs, url, VisibilityTimeout=30)
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    # The first delivery's handle is stale: deleting with it leaves the message, as SQS may.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    with pytest.raises(ClientError):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    # A nack (visibility 0) makes it receivable at once.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"], VisibilityTimeout=0)
    [third] = _receive(sqs, url)
    extended = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": third["ReceiptHandle"], "VisibilityTimeout": 60},
        {"Id": "b", "ReceiptHandle": "garbage", "VisibilityTimeout": 60}])
    assert [s["Id"] for s in extended["Successful"]] == ["a"]
    assert [f["Id"] for f in extended["Failed"]] == ["b"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    time.sleep(1.2)
    assert _receive(sqs, url) == []


def test_long_poll_returns_when_a_message_arrives(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    started = time.monotonic()
    assert _receive(sqs, url, wait=1) == []
    assert 0.9 < time.monotonic() - started < 3

    timer = threading.Timer(0.3, lambda: sqs.send_message(QueueUrl=url, MessageBody="late"))
    timer.start()
    started = time.monotonic()
    msgs = _receive(sqs, url, wait=10)
    timer.join()
    assert [m["Body"] for m in msgs] == ["late"]
    assert time.monotonic() - started < 3


def test_delay_redrive_and_missing_queues(sqs: Any) -> None:
    url = sqs.create_queue(QueueName=_name("q"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert _receive(sqs, url) == []
    assert [m["Body"] for m in _receive(sqs, url, wait=3)] == ["later"]

    dlq = sqs.create_queue(QueueName=_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src = sqs.create_queue(QueueName=_name("q"), Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    sqs.send_message(QueueUrl=src, MessageBody="poison")
    for _ in range(2):
        [msg] = _receive(sqs, src)
        sqs.change_message_visibility(QueueUrl=src, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    assert _receive(sqs, src) == []  # the third receive moved it
    assert [m["Body"] for m in _receive(sqs, dlq)] == ["poison"]

    assert sqs.get_queue_url(QueueName=src.rsplit("/", 1)[-1])["QueueUrl"] == src
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=_name("missing"))
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=f"{url}-missing", MessageBody="x")


# --- the worker against it -------------------------------------------------------------------------------------


def test_worker_ingests_small_objects_through_the_stub(tmp_path: Path) -> None:
    """The bench's small-objects phase in miniature: every document arrives, every message is deleted."""
    from worker.bench.runner import Aws, Options, Progress, _servers, small_inputs, small_objects, worker_config

    opts = Options(types=["alb"], mb=1, object_mb=1, small_objects=30, small_kb=5, aws="stub")
    progress = Progress(quiet=True)
    with _servers(opts, tmp_path, progress) as servers:
        assert servers.aws_stub is not None
        objects = small_inputs(opts)
        aws = Aws.create(servers.aws_stub.url, "-test")
        notes = aws.capture(objects, progress, "test")
        assert len(notes) == 30
        row = small_objects(objects, notes, aws, servers, worker_config(aws, servers.stub.url, True), tmp_path,
                            progress, "test", timeout=120)
        assert row["received"] == sum(o.records for o in objects)
        assert aws.depth() == 0
        assert row["requests_GetObject"] >= 1.0
        assert row["cpu_ms_per_object"] > 0
        assert row["requests_ReceiveMessage"] < 1.0  # messages arrive in batches
