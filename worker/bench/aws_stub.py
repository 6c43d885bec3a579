"""An in-memory S3 + SQS server for benchmarks: the wire protocols botocore speaks, a fraction of moto's cost.

moto answers each request with milliseconds of Python, so with small objects (one GetObject, a tenth of a
ReceiveMessage and of a DeleteMessageBatch per object) the emulator, not the worker, set the pace of
`sluice bench`. This server keeps buckets and queues in dicts and answers from templates, so that what is
measured is the worker. It speaks what botocore 1.43 sends to an `endpoint_url`:

- SQS, JSON protocol (`POST /`, `X-Amz-Target: AmazonSQS.<Operation>`, `application/x-amz-json-1.0`):
  queues, send (batch, delay), receive with long polling and visibility timeouts, delete and visibility
  changes (batch), attributes, purge, redrive to a dead-letter queue after `maxReceiveCount` receives.
  Receipt handles are per delivery: a stale one (the message was received again since) deletes nothing, which
  SQS may do too (moto deletes).
- S3, REST + XML, path style (`http://127.0.0.1:PORT/bucket/key`, what botocore uses for an IP endpoint) or
  virtual-host style for `*.localhost` endpoints: buckets, PutObject (aws-chunked bodies too), GetObject
  (Range, If-Match), HeadObject, CopyObject, DeleteObject(s), ListObjects(V2), multipart uploads, and
  bucket notifications to SQS queues in the real event shape (`ObjectCreated:*` records with the URL-encoded
  key, and the `s3:TestEvent` that configuring a notification sends).

No authentication, no versioning, no encryption; one account (`123456789012`) and one region. Unsupported
calls answer `501 NotImplemented`, so a gap shows up as an error rather than as a silent wrong answer.
`GET /_stub/stats` counts requests per operation.

    python -m worker.bench.aws_stub --port 0    # prints {"url": "http://127.0.0.1:PORT"} when ready
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import heapq
import ipaddress
import itertools
import json
import socket
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, quote_plus, unquote
from xml.sax.saxutils import escape

import orjson
from aiohttp import web

ACCOUNT = "123456789012"
JSON_TYPE = "application/x-amz-json-1.0"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_VISIBLE, _IN_FLIGHT, _DELAYED = 0, 1, 2


class StubError(Exception):
    """An error answer: SQS (JSON `__type` plus the query-compatible code header) or S3 (XML `<Error>`)."""

    def __init__(self, status: int, code: str, message: str, query_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.query_code = query_code


# --- SQS ------------------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Message:
    id: str
    body: str
    md5: str
    sent_ms: int
    attributes: dict[str, Any] | None = None
    """MessageAttributes as sent (returned as they are when asked for)."""
    state: int = _VISIBLE
    receive_count: int = 0
    first_receive_ms: int = 0
    receipt: str = ""
    """The receipt handle of the latest delivery: only it deletes the message or changes its visibility."""
    hidden_until: float = 0.0
    token: int = 0
    """Changes with every change of `hidden_until`, so that a superseded timer entry is recognised."""
    deleted: bool = False


class Queue:
    """One standard queue: visible messages in arrival order, hidden ones (in flight or delayed) on a timer heap."""

    def __init__(self, server: AwsStub, name: str, url: str, attributes: dict[str, str]) -> None:
        self.server = server
        self.name = name
        self.url = url
        self.arn = f"arn:aws:sqs:{server.region}:{ACCOUNT}:{name}"
        self.created = int(time.time())
        self.attributes = {"VisibilityTimeout": "30", "DelaySeconds": "0", "ReceiveMessageWaitTimeSeconds": "0",
                           "MessageRetentionPeriod": "345600", "MaximumMessageSize": "262144", **attributes}
        self.messages: dict[str, Message] = {}
        self.visible: deque[Message] = deque()
        self._timers: list[tuple[float, int, Message, int]] = []
        self._seq = itertools.count()
        self._receipts = itertools.count(1)
        self._waiters: list[asyncio.Future[None]] = []

    # A message's life: send -> visible (or delayed) -> received (in flight, hidden) -> deleted, or back to
    # visible when its visibility lapses or is set to 0.

    def send(self, body: str, delay: int | None = None, attributes: dict[str, Any] | None = None) -> Message:
        now_ms = int(time.time() * 1000)
        msg = Message(str(uuid.uuid4()), body, hashlib.md5(body.encode()).hexdigest(), now_ms, attributes or None)
        self.messages[msg.id] = msg
        delay = int(self.attributes.get("DelaySeconds", "0")) if delay is None else delay
        if delay > 0:
            self._hide(msg, _DELAYED, time.monotonic() + delay)
        else:
            self._show(msg)
        return msg

    def _show(self, msg: Message) -> None:
        msg.state = _VISIBLE
        msg.hidden_until = 0.0
        msg.token += 1
        self.visible.append(msg)
        self._wake()

    def _hide(self, msg: Message, state: int, until: float) -> None:
        msg.state = state
        msg.hidden_until = until
        msg.token += 1
        heapq.heappush(self._timers, (until, next(self._seq), msg, msg.token))

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def release_due(self, now: float) -> None:
        """Hidden messages whose time has come become visible again."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, msg, token = heapq.heappop(timers)
            if msg.token == token and not msg.deleted and msg.state != _VISIBLE:
                self._show(msg)

    def _take(self, n: int, visibility: int) -> list[Message]:
        out: list[Message] = []
        now = time.monotonic()
        now_ms = int(time.time() * 1000)
        redrive = self._redrive()
        while self.visible and len(out) < n:
            msg = self.visible.popleft()
            if msg.deleted or msg.state != _VISIBLE:
                continue
            if redrive is not None and msg.receive_count >= redrive[1]:
                self._move_to(msg, redrive[0])
                continue
            msg.receive_count += 1
            msg.first_receive_ms = msg.first_receive_ms or now_ms
            msg.receipt = f"{msg.id}#{next(self._receipts)}"
            self._hide(msg, _IN_FLIGHT, now + visibility)
            out.append(msg)
        return out

    def _redrive(self) -> tuple[Queue, int] | None:
        policy = self.attributes.get("RedrivePolicy")
        if not policy:
            return None
        try:
            doc = json.loads(policy)
            target = self.server.queue_by_arn(str(doc["deadLetterTargetArn"]))
            return target, int(doc["maxReceiveCount"])
        except (ValueError, KeyError, TypeError, StubError):
            return None

    def _move_to(self, msg: Message, target: Queue) -> None:
        self.delete(msg)
        moved = target.send(msg.body, 0, msg.attributes)
        moved.sent_ms = msg.sent_ms

    async def receive(self, n: int, wait: float, visibility: int) -> list[Message]:
        """Up to `n` messages, waiting up to `wait` seconds for the first (long polling)."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + wait
        while True:
            now = time.monotonic()
            self.release_due(now)
            out = self._take(n, visibility)
            if out or now >= deadline:
                return out
            timeout = deadline - now
            if self._timers:
                timeout = min(timeout, max(0.0, self._timers[0][0] - now))
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            timer = loop.call_later(timeout, _resolve, fut)
            try:
                await fut
            finally:
                timer.cancel()

    def by_receipt(self, receipt: str) -> Message | None:
        """The message a receipt handle names if that handle is its latest; raises on a malformed handle."""
        msg_id, sep, _ = receipt.partition("#")
        if not sep:
            raise StubError(400, "ReceiptHandleIsInvalid", f'The input receipt handle "{receipt}" is not a valid '
                            "receipt handle.", "ReceiptHandleIsInvalid;Sender")
        msg = self.messages.get(msg_id)
        return msg if msg is not None and msg.receipt == receipt else None

    def delete(self, msg: Message) -> None:
        msg.deleted = True
        self.messages.pop(msg.id, None)

    def change_visibility(self, receipt: str, seconds: int) -> None:
        msg = self.by_receipt(receipt)
        if msg is None or msg.state != _IN_FLIGHT:
            raise StubError(400, "InvalidParameterValue", f"Value {receipt} for parameter ReceiptHandle is invalid. "
                            "Reason: Message does not exist or is not available for visibility timeout change.",
                            "InvalidParameterValue;Sender")
        if seconds <= 0:
            self._show(msg)
        else:
            self._hide(msg, _IN_FLIGHT, time.monotonic() + seconds)

    def purge(self) -> None:
        for msg in self.messages.values():
            msg.deleted = True
        self.messages.clear()
        self.visible.clear()
        self._timers.clear()

    def counts(self) -> dict[str, int]:
        self.release_due(time.monotonic())
        states = Counter(msg.state for msg in self.messages.values())
        return {"ApproximateNumberOfMessages": states[_VISIBLE],
                "ApproximateNumberOfMessagesNotVisible": states[_IN_FLIGHT],
                "ApproximateNumberOfMessagesDelayed": states[_DELAYED]}

    def get_attributes(self, names: Iterable[str]) -> dict[str, str]:
        every = {**self.attributes, **{k: str(v) for k, v in self.counts().items()}, "QueueArn": self.arn,
                 "CreatedTimestamp": str(self.created), "LastModifiedTimestamp": str(self.created)}
        wanted = set(names)
        return every if "All" in wanted else {k: v for k, v in every.items() if k in wanted}


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _message_json(msg: Message, system: set[str], user: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"MessageId": msg.id, "ReceiptHandle": msg.receipt, "MD5OfBody": msg.md5, "Body": msg.body}
    if system:
        every = "All" in system
        attrs: dict[str, str] = {}
        if every or "ApproximateReceiveCount" in system:
            attrs["ApproximateReceiveCount"] = str(msg.receive_count)
        if every or "SentTimestamp" in system:
            attrs["SentTimestamp"] = str(msg.sent_ms)
        if every or "ApproximateFirstReceiveTimestamp" in system:
            attrs["ApproximateFirstReceiveTimestamp"] = str(msg.first_receive_ms)
        if every or "SenderId" in system:
            attrs["SenderId"] = "AIDAIENQZJOLO23YVJ4VO"
        if attrs:
            out["Attributes"] = attrs
    if user and msg.attributes:
        every = "All" in user or ".*" in user
        chosen = {k: v for k, v in msg.attributes.items() if every or k in user}
        if chosen:
            out["MessageAttributes"] = chosen
    return out


# --- S3 -------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class StoredObject:
    body: bytes
    etag: str
    """Quoted, as S3 sends it."""
    modified: float
    content_type: str = "binary/octet-stream"
    content_encoding: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    http_date: str = ""

    def __post_init__(self) -> None:
        self.http_date = formatdate(self.modified, usegmt=True)


@dataclass(slots=True)
class QueueTarget:
    id: str
    queue_arn: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def matches(self, event: str, key: str) -> bool:
        if not (key.startswith(self.prefix) and key.endswith(self.suffix)):
            return False
        full = f"s3:{event}"
        return any(full == e or (e.endswith("*") and full.startswith(e[:-1])) for e in self.events)


@dataclass
class Bucket:
    name: str
    created: float
    objects: dict[str, StoredObject] = field(default_factory=dict)
    notifications: list[QueueTarget] = field(default_factory=list)
    notification_xml: bytes = b""
    uploads: dict[str, tuple[str, dict[int, bytes], StoredObject]] = field(default_factory=dict)
    """upload id -> (key, parts, the object's headers)."""


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _xml(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=(_XML_HEAD + body).encode(), status=status, content_type="application/xml",
                        headers=headers)


def decode_aws_chunked(data: bytes) -> bytes:
    """The payload of an `aws-chunked` body (`<hex size>[;chunk-signature=...]\\r\\n<data>\\r\\n` ... `0\\r\\n`
    followed by trailers such as a checksum), which botocore sends for some streaming uploads."""
    out = bytearray()
    pos = 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(out)
        start = eol + 2
        out += data[start:start + size]
        pos = start + size + 2


# --- the server -----------------------------------------------------------------------------------------------


class AwsStub:
    """State and request handling; `make_app()` serves it."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.buckets: dict[str, Bucket] = {}
        self.queues: dict[str, Queue] = {}
        self.requests: Counter[str] = Counter()
        self._request_ids = itertools.count(1)
        self._sequencer = itertools.count(1)
        self.base_url = "http://127.0.0.1"
        self._sqs: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "CreateQueue": self.create_queue, "GetQueueUrl": self.get_queue_url, "ListQueues": self.list_queues,
            "DeleteQueue": self.delete_queue, "PurgeQueue": self.purge_queue,
            "GetQueueAttributes": self.get_queue_attributes, "SetQueueAttributes": self.set_queue_attributes,
            "SendMessage": self.send_message, "SendMessageBatch": self.send_message_batch,
            "ReceiveMessage": self.receive_message, "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch,
            "ChangeMessageVisibility": self.change_message_visibility,
            "ChangeMessageVisibilityBatch": self.change_message_visibility_batch,
        }

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 31)
        app.router.add_get("/_stub/stats", self._stats)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response({"requests": dict(self.requests), "buckets": len(self.buckets),
                                  "objects": sum(len(b.objects) for b in self.buckets.values()),
                                  "queues": {name: q.counts() for name, q in self.queues.items()}})

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        target = request.headers.get("X-Amz-Target")
        if target is not None and target.startswith("AmazonSQS."):
            return await self._sqs_request(target[10:], request)
        try:
            return await self._s3_request(request)
        except StubError as exc:
            self.requests["S3Error"] += 1
            if request.method == "HEAD":
                return web.Response(status=exc.status)
            return _xml(f"<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message>"
                        f"<RequestId>{next(self._request_ids)}</RequestId></Error>", exc.status)

    # --- SQS operations -------------------------------------------------------------------------------------

    async def _sqs_request(self, op: str, request: web.Request) -> web.Response:
        self.requests[op] += 1
        handler = self._sqs.get(op)
        try:
            if handler is None:
                raise StubError(400, "UnsupportedOperation", f"the AWS stub does not implement SQS {op}",
                                "AWS.SimpleQueueService.UnsupportedOperation;Sender")
            raw = await request.read()
            result = await handler(orjson.loads(raw) if raw else {})
        except StubError as exc:
            headers = {"x-amzn-query-error": exc.query_code} if exc.query_code else None
            return web.Response(body=orjson.dumps({"__type": f"com.amazonaws.sqs#{exc.code}",
                                                   "message": exc.message}),
                                status=exc.status, content_type=JSON_TYPE, headers=headers)
        except ValueError as exc:
            return web.Response(body=orjson.dumps({"__type": "com.amazonaws.sqs#InvalidParameterValue",
                                                   "message": str(exc)}), status=400, content_type=JSON_TYPE)
        return web.Response(body=orjson.dumps(result), content_type=JSON_TYPE)

    def queue(self, url_or_name: str) -> Queue:
        name = url_or_name.rstrip("/").rsplit("/", 1)[-1]
        q = self.queues.get(name)
        if q is None:
            raise StubError(400, "QueueDoesNotExist", "The specified queue does not exist.",
                            "AWS.SimpleQueueService.NonExistentQueue;Sender")
        return q

    def queue_by_arn(self, arn: str) -> Queue:
        return self.queue(arn.rsplit(":", 1)[-1])

    async def create_queue(self, p: dict[str, Any]) -> dict[str, Any]:
        name = str(p["QueueName"])
        q = self.queues.get(name)
        if q is None:
            q = Queue(self, name, f"{self.base_url}/{ACCOUNT}/{name}", dict(p.get("Attributes") or {}))
            self.queues[name] = q
        return {"QueueUrl": q.url}

    async def get_queue_url(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"QueueUrl": self.queue(str(p["QueueName"])).url}

    async def list_queues(self, p: dict[str, Any]) -> dict[str, Any]:
        prefix = str(p.get("QueueNamePrefix") or "")
        urls = [q.url for name, q in self.queues.items() if name.startswith(prefix)]
        return {"QueueUrls": urls} if urls else {}

    async def delete_queue(self, p: dict[str, Any]) -> dict[str, Any]:
        q = self.queue(str(p["QueueUrl"]))
        q.purge()
        q._wake()
        del self.queues[q.name]
        return {}

    async def purge_queue(self, p: dict[str, Any]) -> dict[str, Any]:
        self.queue(str(p["QueueUrl"])).purge()
        return {}

    async def get_queue_attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        q = self.queue(str(p["QueueUrl"]))
        return {"Attributes": q.get_attributes(p.get("AttributeNames") or [])}

    async def set_queue_attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        self.queue(str(p["QueueUrl"])).attributes.update({str(k): str(v) for k, v in p["Attributes"].items()})
        return {}

    async def send_message(self, p: dict[str, Any]) -> dict[str, Any]:
        q = self.queue(str(p["QueueUrl"]))
        msg = q.send(str(p["MessageBody"]), p.get("DelaySeconds"), p.get("MessageAttributes"))
        return {"MessageId": msg.id, "MD5OfMessageBody": msg.md5}

    async def send_message_batch(self, p: dict[str, Any]) -> dict[str, Any]:
        q = self.queue(str(p["QueueUrl"]))
        entries = p.get("Entries") or []
        if not entries or len(entries) > 10:
            raise StubError(400, "TooManyEntriesInBatchRequest" if entries else "EmptyBatchRequest",
                            f"{len(entries)} entries in a batch (1 to 10 allowed)")
        ok = []
        for e in entries:
            msg = q.send(str(e["MessageBody"]), e.get("DelaySeconds"), e.get("MessageAttributes"))
            ok.append({"Id": e["Id"], "MessageId": msg.id, "MD5OfMessageBody": msg.md5})
        return {"Successful": ok, "Failed": []}

    async def receive_message(self, p: dict[str, Any]) -> dict[str, Any]:
        q = self.queue(str(p["QueueUrl"]))
        n = int(p.get("MaxNumberOfMessages") or 1)
        if not 1 <= n <= 10:
            raise StubError(400, "InvalidParameterValue", f"MaxNumberOfMessages {n} is not within 1..10",
                            "InvalidParameterValue;Sender")
        wait = p.get("WaitTimeSeconds")
        wait = float(q.attributes["ReceiveMessageWaitTimeSeconds"] if wait is None else wait)
        visibility = p.get("VisibilityTimeout")
        visibility = int(q.attributes["VisibilityTimeout"] if visibility is None else visibility)
        msgs = await q.receive(n, wait, visibility)
        if not msgs:
            return {}
        system = set(p.get("MessageSystemAttributeNames") or ()) | set(p.get("AttributeNames") or ())
        user = set(p.get("MessageAttributeNames") or ())
        return {"Messages": [_message_json(msg, system, user) for msg in msgs]}

    async def delete_message(self, p: dict[str, Any]) -> dict[str, Any]:
        q = self.queue(str(p["QueueUrl"]))
        msg = q.by_receipt(str(p["ReceiptHandle"]))
        if msg is not None:
            q.delete(msg)
        return {}

    async def delete_message_batch(self, p: dict[str, Any]) -> dict[str, Any]:
        q = self.queue(str(p["QueueUrl"]))

        def delete(e: dict[str, Any]) -> None:
            msg = q.by_receipt(str(e["ReceiptHandle"]))
            if msg is not None:
                q.delete(msg)

        return _per_entry(p, delete)

    async def change_message_visibility(self, p: dict[str, Any]) -> dict[str, Any]:
        self.queue(str(p["QueueUrl"])).change_visibility(str(p["ReceiptHandle"]), int(p["VisibilityTimeout"]))
        return {}

    async def change_message_visibility_batch(self, p: dict[str, Any]) -> dict[str, Any]:
        q = self.queue(str(p["QueueUrl"]))
        return _per_entry(p, lambda e: q.change_visibility(str(e["ReceiptHandle"]),
                                                           int(e.get("VisibilityTimeout") or 0)))

    # --- S3 operations --------------------------------------------------------------------------------------

    def _address(self, request: web.Request) -> tuple[str, str]:
        """(bucket, key) from the path (path style) or from a `<bucket>.localhost` Host (virtual-host style)."""
        path = request.rel_url.raw_path
        host = request.host.rsplit(":", 1)[0] if not request.host.startswith("[") else ""
        bucket_from_host = ""
        if host.endswith(".localhost"):
            bucket_from_host = host[: -len(".localhost")]
        elif host and "." in host and not _is_ip(host):
            first = host.split(".", 1)[0]
            if first in self.buckets:
                bucket_from_host = first
        if bucket_from_host:
            return bucket_from_host, unquote(path[1:])
        bucket, _, key = path[1:].partition("/")
        return unquote(bucket), unquote(key)

    def bucket(self, name: str) -> Bucket:
        b = self.buckets.get(name)
        if b is None:
            raise StubError(404, "NoSuchBucket", f"The specified bucket does not exist: {name}")
        return b

    async def _s3_request(self, request: web.Request) -> web.StreamResponse:
        bucket, key = self._address(request)
        method = request.method
        query = request.rel_url.query if request.rel_url.raw_query_string else None
        if key:
            if method == "GET" and (query is None or not ("uploadId" in query or "tagging" in query
                                                          or "acl" in query)):
                self.requests["GetObject"] += 1
                return self.get_object(request, bucket, key)
            if method == "PUT":
                if query is not None and "partNumber" in query:
                    self.requests["UploadPart"] += 1
                    return await self.upload_part(request, bucket, query["uploadId"], int(query["partNumber"]))
                if query is not None and ("tagging" in query or "acl" in query or "retention" in query):
                    raise StubError(501, "NotImplemented", f"the AWS stub does not implement PUT ?{query}")
                if "x-amz-copy-source" in request.headers:
                    self.requests["CopyObject"] += 1
                    return self.copy_object(request, bucket, key)
                self.requests["PutObject"] += 1
                return await self.put_object(request, bucket, key)
            if method == "HEAD":
                self.requests["HeadObject"] += 1
                return self.head_object(request, bucket, key)
            if method == "DELETE":
                if query is not None and "uploadId" in query:
                    self.requests["AbortMultipartUpload"] += 1
                    self.bucket(bucket).uploads.pop(query["uploadId"], None)
                    return web.Response(status=204)
                self.requests["DeleteObject"] += 1
                self.bucket(bucket).objects.pop(key, None)
                return web.Response(status=204)
            if method == "POST" and query is not None and "uploads" in query:
                self.requests["CreateMultipartUpload"] += 1
                return self.create_multipart_upload(request, bucket, key)
            if method == "POST" and query is not None and "uploadId" in query:
                self.requests["CompleteMultipartUpload"] += 1
                return await self.complete_multipart_upload(request, bucket, key, query["uploadId"])
        elif bucket:
            sub = set(query) - {"x-id"} if query is not None else set()  # x-id: the operation name botocore adds
            if method == "PUT" and not sub:
                self.requests["CreateBucket"] += 1
                return self.create_bucket(bucket)
            if method == "PUT" and "notification" in sub:
                self.requests["PutBucketNotificationConfiguration"] += 1
                return await self.put_notification(request, bucket)
            if method == "GET" and "notification" in sub:
                self.requests["GetBucketNotificationConfiguration"] += 1
                b = self.bucket(bucket)
                return web.Response(body=b.notification_xml or
                                    f'{_XML_HEAD}<NotificationConfiguration xmlns="{_S3_NS}"/>'.encode(),
                                    content_type="application/xml")
            if method == "GET" and "location" in sub:
                self.bucket(bucket)
                return _xml(f'<LocationConstraint xmlns="{_S3_NS}">'
                            f'{"" if self.region == "us-east-1" else self.region}</LocationConstraint>')
            if method == "GET" and "versioning" in sub:
                self.bucket(bucket)
                return _xml(f'<VersioningConfiguration xmlns="{_S3_NS}"/>')
            if method == "GET" and not sub - {"list-type", "prefix", "delimiter", "max-keys", "continuation-token",
                                                "start-after", "encoding-type", "marker", "fetch-owner"}:
                self.requests["ListObjects"] += 1
                return self.list_objects(bucket, query)
            if method == "HEAD" and not sub:
                self.requests["HeadBucket"] += 1
                self.bucket(bucket)
                return web.Response(status=200, headers={"x-amz-bucket-region": self.region})
            if method == "DELETE" and not sub:
                self.requests["DeleteBucket"] += 1
                b = self.bucket(bucket)
                if b.objects:
                    raise StubError(409, "BucketNotEmpty", "The bucket you tried to delete is not empty")
                del self.buckets[bucket]
                return web.Response(status=204)
            if method == "POST" and "delete" in sub:
                self.requests["DeleteObjects"] += 1
                return await self.delete_objects(request, bucket)
        elif method == "GET":
            self.requests["ListBuckets"] += 1
            items = "".join(f"<Bucket><Name>{escape(b.name)}</Name><CreationDate>{_iso(b.created)}</CreationDate>"
                            "</Bucket>" for b in self.buckets.values())
            return _xml(f'<ListAllMyBucketsResult xmlns="{_S3_NS}"><Owner><ID>stub</ID></Owner><Buckets>{items}'
                        "</Buckets></ListAllMyBucketsResult>")
        raise StubError(501, "NotImplemented", f"the AWS stub does not implement {method} "
                        f"{request.rel_url.raw_path_qs}")

    def create_bucket(self, name: str) -> web.Response:
        if name in self.buckets:
            raise StubError(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                            "succeeded and you already own it.")
        self.buckets[name] = Bucket(name, time.time())
        return web.Response(headers={"Location": f"/{name}"})

    def _object(self, bucket: str, key: str) -> StoredObject:
        obj = self.bucket(bucket).objects.get(key)
        if obj is None:
            raise StubError(404, "NoSuchKey", "The specified key does not exist.")
        return obj

    def _check_conditions(self, request: web.Request, obj: StoredObject) -> web.Response | None:
        match = request.headers.get("If-Match")
        if match is not None and match.strip() not in (obj.etag, "*", obj.etag.strip('"')):
            raise StubError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not "
                            "hold")
        none_match = request.headers.get("If-None-Match")
        if none_match is not None and none_match.strip() in (obj.etag, "*", obj.etag.strip('"')):
            return web.Response(status=304, headers={"ETag": obj.etag})
        return None

    def _object_headers(self, obj: StoredObject) -> dict[str, str]:
        headers = {"ETag": obj.etag, "Last-Modified": obj.http_date, "Content-Type": obj.content_type,
                   "Accept-Ranges": "bytes"}
        if obj.content_encoding:
            headers["Content-Encoding"] = obj.content_encoding
        for name, value in obj.metadata.items():
            headers[f"x-amz-meta-{name}"] = value
        return headers

    def get_object(self, request: web.Request, bucket: str, key: str) -> web.Response:
        obj = self._object(bucket, key)
        not_modified = self._check_conditions(request, obj)
        if not_modified is not None:
            return not_modified
        headers = self._object_headers(obj)
        rng = request.headers.get("Range")
        if rng is None:
            return web.Response(body=obj.body, headers=headers)
        size = len(obj.body)
        start_s, _, end_s = rng.removeprefix("bytes=").partition("-")
        if start_s:
            start, end = int(start_s), min(int(end_s) if end_s else size - 1, size - 1)
        else:
            start, end = max(0, size - int(end_s)), size - 1
        if start >= size or start > end:
            raise StubError(416, "InvalidRange", "The requested range is not satisfiable")
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return web.Response(body=obj.body[start:end + 1], status=206, headers=headers)

    def head_object(self, request: web.Request, bucket: str, key: str) -> web.Response:
        obj = self._object(bucket, key)
        not_modified = self._check_conditions(request, obj)
        if not_modified is not None:
            return not_modified
        headers = self._object_headers(obj)
        headers["Content-Length"] = str(len(obj.body))
        return web.Response(headers=headers)

    @staticmethod
    async def _payload(request: web.Request) -> bytes:
        data = await request.read()
        chunked = ("aws-chunked" in request.headers.get("Content-Encoding", "")
                   or request.headers.get("x-amz-content-sha256", "").startswith("STREAMING-"))
        return decode_aws_chunked(data) if chunked else data

    @staticmethod
    def _new_object(request: web.Request, body: bytes, etag: str) -> StoredObject:
        encoding = ",".join(e.strip() for e in request.headers.get("Content-Encoding", "").split(",")
                            if e.strip() and e.strip() != "aws-chunked") or None
        metadata = {k[11:].lower(): v for k, v in request.headers.items() if k.lower().startswith("x-amz-meta-")}
        return StoredObject(body, etag, time.time(), request.headers.get("Content-Type") or "binary/octet-stream",
                            encoding, metadata)

    async def put_object(self, request: web.Request, bucket: str, key: str) -> web.Response:
        b = self.bucket(bucket)
        body = await self._payload(request)
        obj = self._new_object(request, body, f'"{hashlib.md5(body).hexdigest()}"')
        b.objects[key] = obj
        self._notify(b, "ObjectCreated:Put", key, obj)
        return web.Response(headers={"ETag": obj.etag})

    def copy_object(self, request: web.Request, bucket: str, key: str) -> web.Response:
        b = self.bucket(bucket)
        source = unquote(request.headers["x-amz-copy-source"].split("?", 1)[0]).lstrip("/")
        src_bucket, _, src_key = source.partition("/")
        src = self._object(src_bucket, src_key)
        if request.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE":
            obj = self._new_object(request, src.body, src.etag)
        else:
            obj = StoredObject(src.body, src.etag, time.time(), src.content_type, src.content_encoding,
                               dict(src.metadata))
        b.objects[key] = obj
        self._notify(b, "ObjectCreated:Copy", key, obj)
        return _xml(f'<CopyObjectResult xmlns="{_S3_NS}"><LastModified>{_iso(obj.modified)}</LastModified>'
                    f"<ETag>{escape(obj.etag)}</ETag></CopyObjectResult>")

    def create_multipart_upload(self, request: web.Request, bucket: str, key: str) -> web.Response:
        b = self.bucket(bucket)
        upload_id = uuid.uuid4().hex
        b.uploads[upload_id] = (key, {}, self._new_object(request, b"", ""))
        return _xml(f'<InitiateMultipartUploadResult xmlns="{_S3_NS}"><Bucket>{escape(bucket)}</Bucket>'
                    f"<Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>")

    async def upload_part(self, request: web.Request, bucket: str, upload_id: str, number: int) -> web.Response:
        upload = self.bucket(bucket).uploads.get(upload_id)
        if upload is None:
            raise StubError(404, "NoSuchUpload", "The specified upload does not exist.")
        data = await self._payload(request)
        upload[1][number] = data
        return web.Response(headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    async def complete_multipart_upload(self, request: web.Request, bucket: str, key: str,
                                        upload_id: str) -> web.Response:
        b = self.bucket(bucket)
        upload = b.uploads.pop(upload_id, None)
        if upload is None:
            raise StubError(404, "NoSuchUpload", "The specified upload does not exist.")
        _, parts, template = upload
        doc = ET.fromstring(await request.read())
        numbers = [int(el.text or "0") for el in doc.iter() if el.tag.rsplit("}", 1)[-1] == "PartNumber"]
        missing = [n for n in numbers if n not in parts]
        if missing:
            raise StubError(400, "InvalidPart", f"part(s) {missing} were not uploaded")
        chosen = [parts[n] for n in numbers]
        digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in chosen)).hexdigest()
        obj = StoredObject(b"".join(chosen), f'"{digest}-{len(chosen)}"', time.time(), template.content_type,
                           template.content_encoding, template.metadata)
        b.objects[key] = obj
        self._notify(b, "ObjectCreated:CompleteMultipartUpload", key, obj)
        return _xml(f'<CompleteMultipartUploadResult xmlns="{_S3_NS}"><Bucket>{escape(bucket)}</Bucket>'
                    f"<Key>{escape(key)}</Key><ETag>{escape(obj.etag)}</ETag></CompleteMultipartUploadResult>")

    async def delete_objects(self, request: web.Request, bucket: str) -> web.Response:
        b = self.bucket(bucket)
        doc = ET.fromstring(await request.read())
        keys = [el.text or "" for el in doc.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]
        for key in keys:
            b.objects.pop(key, None)
        deleted = "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in keys)
        return _xml(f'<DeleteResult xmlns="{_S3_NS}">{deleted}</DeleteResult>')

    def list_objects(self, bucket: str, query: Any) -> web.Response:
        b = self.bucket(bucket)
        q: dict[str, str] = dict(query) if query is not None else {}
        v2 = q.get("list-type") == "2"
        prefix = q.get("prefix", "")
        delimiter = q.get("delimiter", "")
        max_keys = int(q.get("max-keys", "1000"))
        url = q.get("encoding-type") == "url"
        after = (q.get("continuation-token") or q.get("start-after", "")) if v2 else q.get("marker", "")

        def enc(text: str) -> str:
            return escape(quote(text, safe="/") if url else text)

        contents: list[str] = []
        prefixes: list[str] = []
        seen: set[str] = set()
        truncated = False
        last = ""
        for key in sorted(k for k in b.objects if k.startswith(prefix) and k > after):
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[:cut + len(delimiter)]
                    if common not in seen:
                        seen.add(common)
                        prefixes.append(f"<CommonPrefixes><Prefix>{enc(common)}</Prefix></CommonPrefixes>")
                    last = key
                    continue
            obj = b.objects[key]
            contents.append(f"<Contents><Key>{enc(key)}</Key><LastModified>{_iso(obj.modified)}</LastModified>"
                            f"<ETag>{escape(obj.etag)}</ETag><Size>{len(obj.body)}</Size>"
                            "<StorageClass>STANDARD</StorageClass></Contents>")
            last = key
        head = (f"<Name>{escape(bucket)}</Name><Prefix>{enc(prefix)}</Prefix><MaxKeys>{max_keys}</MaxKeys>"
                f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
                + (f"<Delimiter>{enc(delimiter)}</Delimiter>" if delimiter else "")
                + ("<EncodingType>url</EncodingType>" if url else ""))
        if v2:
            head += f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
            if truncated:
                head += f"<NextContinuationToken>{escape(last)}</NextContinuationToken>"
        elif truncated:
            head += f"<NextMarker>{enc(last)}</NextMarker>"
        tag = "ListBucketResult"
        return _xml(f'<{tag} xmlns="{_S3_NS}">{head}{"".join(contents)}{"".join(prefixes)}</{tag}>')

    async def put_notification(self, request: web.Request, bucket: str) -> web.Response:
        b = self.bucket(bucket)
        raw = await request.read()
        doc = ET.fromstring(raw)
        targets: list[QueueTarget] = []
        for i, conf in enumerate(el for el in doc if _local(el.tag) == "QueueConfiguration"):
            fields: dict[str, list[str]] = {}
            rules: dict[str, str] = {}
            for el in conf.iter():
                tag = _local(el.tag)
                if tag == "FilterRule":
                    parts = {_local(c.tag): (c.text or "") for c in el}
                    rules[parts.get("Name", "").lower()] = parts.get("Value", "")
                elif tag in ("Id", "Queue", "Event"):
                    fields.setdefault(tag, []).append(el.text or "")
            arn = (fields.get("Queue") or [""])[0]
            self.queue_by_arn(arn)  # S3 checks that it can send to the queue
            targets.append(QueueTarget((fields.get("Id") or [f"notification-{i + 1}"])[0], arn,
                                       tuple(fields.get("Event") or ()), rules.get("prefix", ""),
                                       rules.get("suffix", "")))
        b.notifications = targets
        b.notification_xml = raw
        test = orjson.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": _iso(time.time()),
                             "Bucket": bucket, "RequestId": f"{next(self._request_ids):016X}",
                             "HostId": "stub"}).decode()
        for arn in {t.queue_arn for t in targets}:
            self.queue_by_arn(arn).send(test, 0)
        return web.Response()

    def _notify(self, b: Bucket, event: str, key: str, obj: StoredObject) -> None:
        if not b.notifications:
            return
        for target in b.notifications:
            if not target.matches(event, key):
                continue
            q = self.queues.get(target.queue_arn.rsplit(":", 1)[-1])
            if q is None:
                continue
            record = {
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": self.region,
                "eventTime": _iso(obj.modified), "eventName": event,
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLESTUB"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": f"{next(self._request_ids):016X}", "x-amz-id-2": "stub"},
                "s3": {
                    "s3SchemaVersion": "1.0", "configurationId": target.id,
                    "bucket": {"name": b.name, "ownerIdentity": {"principalId": "A3STUBOWNER"},
                               "arn": f"arn:aws:s3:::{b.name}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": len(obj.body), "eTag": obj.etag.strip('"'),
                               "sequencer": f"{next(self._sequencer):018X}"},
                },
            }
            q.send(orjson.dumps({"Records": [record]}).decode(), 0)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _per_entry(p: dict[str, Any], apply: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A batch call's answer: each entry applied on its own, a failing entry listed in `Failed` as SQS does."""
    ok: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for e in p.get("Entries") or []:
        try:
            apply(e)
        except StubError as exc:
            failed.append({"Id": e["Id"], "SenderFault": True, "Code": exc.code, "Message": exc.message})
            continue
        ok.append({"Id": e["Id"]})
    return {"Successful": ok, "Failed": failed}


async def serve(port: int, host: str = "127.0.0.1", region: str = "us-east-1") -> None:
    """Serve until cancelled; prints one JSON ready line with the URL (the port chosen when `port` is 0)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    stub = AwsStub(region)
    stub.base_url = f"http://{host}:{sock.getsockname()[1]}"
    runner = web.AppRunner(stub.make_app(), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=512).start()
    print(json.dumps({"url": stub.base_url}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="an in-memory S3 + SQS server for benchmarks (no auth, one account)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one, printed at start)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--region", default="us-east-1", help="region in ARNs and notifications (default us-east-1)")
    args = p.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of the worker
        runner: Callable[[Any], Any] = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.port, args.host, args.region))
    return 0


if __name__ == "__main__":
    sys.exit(main())
