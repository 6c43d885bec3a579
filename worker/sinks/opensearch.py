"""OpenSearch bulk sink: batches by bytes and count, bounded in-flight requests, per-item outcomes.

Why this shape:
- `create` with a deterministic `_id`: a redelivered document is a 409 (already there), never a duplicate.
- Per-item outcomes: 2xx/409 delivered; 429/5xx retried (only those items) with capped, jittered backoff;
  any other 4xx is the document's own fault and goes to the dead letters with OpenSearch's reason.
- Backpressure: ready bulk bodies wait in a queue of `max_in_flight` slots; when it is full, `submit()` awaits,
  which holds back the readers, which hold back SQS receives. Memory is bounded by configuration.
- Adaptive concurrency: `max_in_flight` senders take bodies off the queue, but each request must pass a gate
  whose capacity follows AIMD (`worker/sinks/concurrency.py`): it grows by one while latency is steady and
  halves on 429/503/timeouts, so an overloaded cluster is not hammered. Memory does not depend on the limit:
  a sender waiting at the gate holds one body, as it would while sending it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from isal import igzip
from opensearchpy import AsyncHttpConnection, AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, SerializationError, TransportError
from opensearchpy.serializer import JSONSerializer
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from worker import telemetry as m
from worker.config import OpenSearchConfig
from worker.dead_letters import DeadLetters
from worker.model import AckSet, DeadLetter, Document, Outcome
from worker.sinks.concurrency import AdaptiveConcurrency, AimdController
from worker.sinks.lifecycle import Mode, lifecycle_of, write_name

log = m.get_logger("sluice.opensearch")

_FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason"
_SERIALIZED: dict[str, Any] = {}
_dumps = orjson.dumps
_THROTTLING_STATUSES = frozenset({429, 503, 504})
"""Whole-request answers that mean "too much, slow down" (504: a gateway in front timed out waiting)."""


class RetryableBulkError(Exception):
    """Some or all items of a bulk request must be sent again (429, 5xx, connection failure, timeout)."""


_ALL_CREATED_HEAD = '{"errors":false,"items":['
"""How a bulk response under `_FILTER_PATH` starts when no item failed (compact JSON, keys in OpenSearch's
order; any other spelling is simply decoded in full)."""


_CREATED_ITEM = {"create": {"status": 201}}


class _FastJSON(JSONSerializer):
    """opensearch-py's serializer with orjson decoding: a bulk response lists every item, and the standard
    library's decoder took about 3 % of a worker's CPU on VPC flow logs (sluice bench profile).

    A bulk response that says no item failed is not decoded at all: its items are only counted (each has one
    `status`), `{"errors": false, "item_count": n}`, since every one of them is a success. Decoding 10,000
    items into dicts only to see that each is a 201 was 3.5 % of the worker's CPU on VPC flow logs."""

    def loads(self, s: str) -> Any:
        if s.startswith(_ALL_CREATED_HEAD) and s.endswith("]}"):
            return {"errors": False, "item_count": s.count('"status":')}
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(s, exc) from None


def build_client(cfg: OpenSearchConfig, aws_region: str) -> AsyncOpenSearch:
    """An AsyncOpenSearch client from config: no auth, basic auth, or SigV4 for `es` / `aoss`."""
    auth: Any = None
    if cfg.auth.type == "basic":
        auth = (cfg.auth.username, cfg.auth.password)
    elif cfg.auth.type == "sigv4":
        import botocore.session
        from opensearchpy import AWSV4SignerAsyncAuth

        # botocore's credential chain covers env, IRSA web identity, ECS task roles and instance profiles,
        # and refreshes them; the signer asks for frozen credentials per request.
        credentials = botocore.session.Session().get_credentials()
        if credentials is None:
            raise RuntimeError("opensearch.auth.type is sigv4 but no AWS credentials were found")
        auth = AWSV4SignerAsyncAuth(credentials, cfg.auth.region or aws_region, cfg.auth.service)
    return AsyncOpenSearch(
        hosts=cfg.hosts,
        http_auth=auth,
        verify_certs=cfg.verify_certs,
        ca_certs=cfg.ca_certs,
        ssl_show_warn=False,
        http_compress=False,  # we gzip bodies ourselves with isal, faster than the stdlib's gzip
        timeout=cfg.bulk.timeout,
        max_retries=0,  # retries are ours: per item, with backoff, bounded in time
        pool_maxsize=cfg.bulk.max_in_flight + 2,
        connection_class=AsyncHttpConnection,  # the one connection class that takes a SigV4 signer
        serializer=_FastJSON(),
    )


class IndexNamer:
    """Where a document goes: its index name (daily mode: from the log type and the document's own date), or
    the write alias / data stream of its log type (rollover and data stream modes: the name pattern without
    its date placeholders, `sluice-{log_type}-{yyyy}.{MM}.{dd}` -> `sluice-cloudtrail`).

    `source_patterns` maps a source name to that source's own `index` pattern (a document's `origin.source`
    picks it); other sources use `pattern`. Names are cached per (pattern, log type, day)."""

    def __init__(self, pattern: str, mode: Mode = "daily", source_patterns: Mapping[str, str] | None = None) -> None:
        self.pattern = pattern
        self.mode: Mode = mode
        self.source_patterns = dict(source_patterns or {})
        self._cache: dict[tuple[str, str, str], str] = {}

    def __call__(self, log_type: str, timestamp: Any, source: str | None = None) -> str:
        pattern = self.source_patterns.get(source, self.pattern) if source is not None else self.pattern
        if self.mode != "daily":
            key = (pattern, log_type, "")
            name = self._cache.get(key)
            if name is None:
                name = self._cache[key] = write_name(pattern, log_type)
            return name
        day = timestamp[:10] if isinstance(timestamp, str) and len(timestamp) >= 10 else ""
        key = (pattern, log_type, day)
        name = self._cache.get(key)
        if name is None:
            dated = bool(day)
            if not dated:  # today's index, which changes: never cached
                day = time.strftime("%Y-%m-%d", time.gmtime())
            name = (
                pattern.replace("{log_type}", log_type)
                .replace("{yyyy}", day[0:4])
                .replace("{MM}", day[5:7])
                .replace("{dd}", day[8:10])
            )
            if len(self._cache) > 4096:
                self._cache.clear()
            if dated:
                self._cache[key] = name
        return name


@dataclass(slots=True)
class _Batch:
    body: bytearray = field(default_factory=bytearray)
    docs: list[Document] = field(default_factory=list)
    spans: list[int] = field(default_factory=list)
    """Start offset in `body` of each document's two lines; the end is the next start."""
    runs: list[list[Any]] = field(default_factory=list)
    """[AckSet, log type, documents] per run of consecutive documents of one unit and log type: when the
    cluster says a whole body went in (`errors: false`), the body is settled per run, not per item."""
    created: float = field(default_factory=time.monotonic)

    def index(self, i: int) -> str:
        """The index of item `i`, from its action line (kept only in the body: needed only for rejections)."""
        action = self.body[self.spans[i]:self.body.index(b"\n", self.spans[i])]
        return str(orjson.loads(action)["create"]["_index"])

    def item_bytes(self, i: int) -> bytes:
        end = self.spans[i + 1] if i + 1 < len(self.spans) else len(self.body)
        return bytes(self.body[self.spans[i]:end])


class OpenSearchSink:
    """Lifecycle: `async with OpenSearchSink(...) as sink:`; leaving the block flushes and drains."""

    def __init__(self, cfg: OpenSearchConfig, dead_letters: DeadLetters, client: AsyncOpenSearch,
                 source_indices: Mapping[str, str] | None = None) -> None:
        """`source_indices`: {source name: its own `index` pattern} for the sources that set one."""
        self.cfg = cfg
        self.client = client
        self.dead_letters = dead_letters
        self.source_indices = dict(source_indices or {})
        self.lifecycle = lifecycle_of(cfg)
        self.index_for = IndexNamer(cfg.index, self.lifecycle.mode, self.source_indices)
        # Rollover mode writes to an alias: if it is missing, OpenSearch would silently create a plain index of
        # that name, which can never be rolled over. `require_alias` makes that a 404 item instead.
        self._action_tail = b'","require_alias":true}}\n' if self.lifecycle.mode == "rollover" else b'"}}\n'
        self._actions: dict[tuple[str, str, str], bytes] = {}
        self._last_action: tuple[str, str, str, bytes] = ("", "", "", b"")
        """(source, log type, day, action head) of the last document: nearly every document has its
        predecessor's, and comparing three strings costs half of hashing a key tuple for `_actions`."""
        self._batch = _Batch()
        self._full: list[_Batch] = []
        """Bodies `add` filled that `ready` has not queued yet (at most a slice's worth)."""
        self._idle_cut: asyncio.Task[None] | None = None
        self._max_bytes = cfg.bulk.max_bytes
        self._max_docs = cfg.bulk.max_docs
        self._queue: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=cfg.bulk.max_in_flight)
        self._senders: list[asyncio.Task[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._buffered = 0
        self.concurrency = AdaptiveConcurrency(_controller(cfg), self._limit_changed)
        m.BULK_CONCURRENCY_LIMIT.set(self.concurrency.limit)

    async def __aenter__(self) -> OpenSearchSink:
        self._senders = [
            asyncio.create_task(self._send_loop(), name=f"bulk-sender-{i}")
            for i in range(self.cfg.bulk.max_in_flight)
        ]
        self._flusher = asyncio.create_task(self._flush_loop(), name="bulk-flusher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, timeout: float | None = None) -> None:
        """Send what is buffered and wait for in-flight requests; after `timeout` seconds, cancel them
        (their documents settle as RETRY, so their units are redelivered, not lost)."""
        if self._closing:
            return
        self._closing = True
        if self._flusher:
            self._flusher.cancel()

        async def drain() -> None:
            if self._idle_cut is not None:
                await self._idle_cut  # its body must be queued before the senders' stop marks
            await self.flush()
            for _ in self._senders:
                await self._queue.put(None)
            await asyncio.gather(*self._senders, return_exceptions=True)

        try:
            await asyncio.wait_for(drain(), timeout)
        except TimeoutError:
            log.warning("bulk_requests_abandoned", note="units will be redelivered")
            for task in self._senders:
                task.cancel()
            await asyncio.gather(*self._senders, return_exceptions=True)

    async def setup(self) -> list[str]:
        """Install what `sluice setup` installs (index templates, ISM policies, the first rollover index or the
        data streams) where it is missing or out of date; returns the names of what was installed or checked.
        Raises when something could not be installed, so start-up retries it."""
        from worker.setup import SetupError, install

        report = await install(self.client, self.cfg, self.source_indices)
        if report.failures:
            raise SetupError("; ".join(report.failures))
        return [item.name for item in report.items]

    # --- intake ----------------------------------------------------------------------------------------

    def takes_serialized(self, source: str) -> bool:
        return True

    def add(self, doc: Document) -> None:
        """Serialise one document into the current bulk body now; never waits (`ready` is the backpressure).

        The body is serialised while the parser's dict is still in the CPU cache, and the dict is dropped at
        once: the bytes are the document from here on."""
        body = doc.body
        timestamp: Any
        if isinstance(body, tuple):  # Serialized: the parser formatted the JSON itself
            timestamp, source = body
        else:
            timestamp = body.get("@timestamp")
            try:
                source = _dumps(body)
            except TypeError as exc:
                self.dead_letters.add_nowait(
                    DeadLetter("unserializable", str(exc), doc.origin, doc.log_type, offset=doc.offset,
                               raw=doc.raw, doc_id=doc.id,
                               index=self.index_for(doc.log_type, timestamp, doc.origin.source)),
                    doc.ack,
                )
                return
        doc.body = _SERIALIZED  # the bytes are the document from here on: the body is freed now, while hot
        day = timestamp[:10] if timestamp.__class__ is str else ""
        last = self._last_action
        if day == last[2] and day and doc.log_type == last[1] and doc.origin.source == last[0]:
            action = last[3]
        else:
            key = (doc.origin.source, doc.log_type, day)
            action = self._actions.get(key) or self._action_head(key, timestamp)
            if day:  # a document without a date of its own goes to today's index: today changes
                self._last_action = (*key, action)
        batch = self._batch
        out = batch.body
        batch.spans.append(len(out))
        out += action
        out += doc.id.encode()
        out += self._action_tail
        out += source
        out += b"\n"
        batch.docs.append(doc)
        run = batch.runs[-1] if batch.runs else None
        if run is not None and run[0] is doc.ack and run[1] is doc.log_type:
            run[2] += 1
        else:
            batch.runs.append([doc.ack, doc.log_type, 1])
        if len(out) >= self._max_bytes or len(batch.docs) >= self._max_docs:
            self._full.append(batch)
            self._batch = _Batch()

    def _action_head(self, key: tuple[str, str, str], timestamp: Any) -> bytes:
        """`{"create":{"_index":"<index>","_id":"` for documents of one source, log type and day (cached: a
        document's action line is then two appends, not a lookup, a format and two encodes)."""
        if len(self._actions) > 4096:
            self._actions.clear()
        index = self.index_for(key[1], timestamp, key[0])
        head = b'{"create":{"_index":"%s","_id":"' % index.encode()
        if key[2]:  # without a date of its own a document goes to today's index: today changes
            self._actions[key] = head
        return head

    async def ready(self) -> None:
        """Queue the bodies `add` filled; waits while `max_in_flight` bodies are already queued or sending."""
        while self._full:
            await self._enqueue(self._full.pop(0))
        self._report_buffer()

    def idle(self) -> None:
        """No input is being parsed (the pipeline says so): send the open body now rather than at
        `flush_interval`, since nothing will fill it soon and its units wait for it (`bulk.flush_when_idle`)."""
        if self.cfg.bulk.flush_when_idle and not self._closing and (self._batch.docs or self._full) \
                and (self._idle_cut is None or self._idle_cut.done()):
            self._idle_cut = asyncio.get_running_loop().create_task(self.flush(), name="bulk-idle-cut")

    def _report_buffer(self) -> None:
        m.SINK_BUFFER_DOCUMENTS.set(self._buffered + len(self._batch.docs) + sum(len(b.docs) for b in self._full))

    async def submit(self, docs: list[Document]) -> None:
        """Queue documents for indexing; awaits while the sink is full (that is the backpressure)."""
        for doc in docs:
            self.add(doc)
        await self.ready()

    async def flush(self) -> None:
        await self.ready()
        if self._batch.docs:
            await self._cut()

    async def _cut(self) -> None:
        batch, self._batch = self._batch, _Batch()
        await self._enqueue(batch)
        self._report_buffer()

    async def _enqueue(self, batch: _Batch) -> None:
        self._buffered += len(batch.docs)
        await self._queue.put(batch)
        m.SINK_BUFFER_FILL.set(self._queue.qsize() / self._queue.maxsize)

    async def _flush_loop(self) -> None:
        """Cuts the open body once it is `flush_interval` old."""
        interval = self.cfg.bulk.flush_interval
        while True:
            await asyncio.sleep(interval / 2)
            if self._batch.docs and time.monotonic() - self._batch.created >= interval:
                await self._cut()

    # --- delivery --------------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            batch = await self._queue.get()
            m.SINK_BUFFER_FILL.set(self._queue.qsize() / self._queue.maxsize)
            if batch is None:
                return
            try:
                await self._deliver(batch)
            except asyncio.CancelledError:
                self._settle_all(batch, range(len(batch.docs)), Outcome.RETRY)
                raise
            except Exception as exc:  # a bug must not lose documents: the units are retried
                log.exception("bulk_delivery_crashed", error=str(exc))
                self._settle_all(batch, range(len(batch.docs)), Outcome.RETRY)
            finally:
                self._buffered -= len(batch.docs)
                self._report_buffer()

    def _settle_all(self, batch: _Batch, items: Any, outcome: Outcome) -> None:
        for i in items:
            batch.docs[i].ack.settle(outcome)

    async def _deliver(self, batch: _Batch) -> None:
        """Send the batch; resend only the retryable items until they succeed or time runs out."""
        pending = list(range(len(batch.docs)))
        retry_cfg = self.cfg.retry
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(RetryableBulkError),
                stop=stop_after_delay(retry_cfg.max_elapsed),
                wait=wait_exponential_jitter(multiplier=retry_cfg.initial_backoff, max=retry_cfg.max_backoff,
                                             jitter=retry_cfg.initial_backoff),
                reraise=True,
            ):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        for i in pending:
                            m.DOCUMENTS_RETRIED.labels(batch.docs[i].log_type).inc()
                    pending = await self._attempt(batch, pending)
                    if pending:
                        raise RetryableBulkError(f"{len(pending)} items to retry")
        except RetryableBulkError as exc:
            log.error("bulk_retries_exhausted", items=len(pending), error=str(exc),
                      max_elapsed=retry_cfg.max_elapsed)
            self._settle_all(batch, pending, Outcome.RETRY)

    async def _attempt(self, batch: _Batch, pending: list[int]) -> list[int]:
        """One bulk request for `pending` items; settles what is final, returns what must be retried."""
        whole = len(pending) == len(batch.docs)
        body: bytes | bytearray = batch.body if whole else b"".join(batch.item_bytes(i) for i in pending)
        headers = {"content-type": "application/x-ndjson"}
        if self.cfg.bulk.compress:
            payload = igzip.compress(body, compresslevel=1)  # straight from the body: no 5 MB copy first
            headers["content-encoding"] = "gzip"
        else:
            payload = bytes(body)
        refused_status, refused_info = 0, ""
        async with self.concurrency.slot() as slot:
            start = time.perf_counter()
            m.BULK_IN_FLIGHT.inc()
            try:
                resp = await self.client.transport.perform_request(
                    "POST", "/_bulk", params={"filter_path": _FILTER_PATH}, body=payload, headers=headers,
                    timeout=self.cfg.bulk.timeout,
                )
            except ConnectionTimeout as exc:
                m.BULK_REQUESTS.labels("timeout").inc()
                m.BULK_THROTTLED.labels("timeout").inc()
                slot.throttled("timeout")
                log.warning("bulk_request_failed", error="timeout", timeout=self.cfg.bulk.timeout, items=len(pending))
                raise RetryableBulkError(str(exc)) from exc
            except OSConnectionError as exc:
                # Refused or reset: the cluster is not there, which says nothing about how busy it is.
                m.BULK_REQUESTS.labels("connection_error").inc()
                log.warning("bulk_request_failed", error=type(exc).__name__, detail=str(exc)[:300], items=len(pending))
                raise RetryableBulkError(str(exc)) from exc
            except TransportError as exc:
                status = exc.status_code if isinstance(exc.status_code, int) else 0
                m.BULK_REQUESTS.labels(f"http_{status}").inc()
                if status in _THROTTLING_STATUSES:
                    m.BULK_THROTTLED.labels(f"request_{status}").inc()
                    slot.throttled(f"request_{status}")
                if status == 429 or status >= 500 or status == 0:
                    log.warning("bulk_request_failed", status=status, items=len(pending))
                    raise RetryableBulkError(f"HTTP {status}") from exc
                refused_status, refused_info = status, str(exc.info)[:1000]
            finally:
                m.BULK_IN_FLIGHT.dec()
                latency = time.perf_counter() - start
                m.BULK_LATENCY.observe(latency)
            if not refused_status:
                m.BULK_REQUESTS.labels("ok").inc()
                m.BULK_BYTES.inc(len(body))
                if whole and self._all_delivered(batch, resp):
                    slot.succeeded(latency)
                    return []
                retry, throttled_items = self._outcomes(batch, pending, resp)
                if throttled_items:
                    m.BULK_THROTTLED.labels("item_429").inc(throttled_items)
                    slot.throttled("item_429")
                else:
                    slot.succeeded(latency)
                return retry
        # The whole request was refused (e.g. 400 for a malformed body or 413 too large): split in two so one
        # bad document cannot sink its neighbours; a single item refused is dead-lettered. Outside the slot:
        # each half takes its own place.
        if len(pending) == 1:
            self._reject(batch, pending[0], f"HTTP {refused_status}", refused_info)
            return []
        half = len(pending) // 2
        return await self._attempt(batch, pending[:half]) + await self._attempt(batch, pending[half:])

    def _limit_changed(self, limit: int, reason: str) -> None:
        m.BULK_CONCURRENCY_LIMIT.set(limit)
        if reason == "steady":
            log.debug("bulk_concurrency_changed", limit=limit, reason=reason)
        else:
            log.info("bulk_concurrency_changed", limit=limit, reason=reason)

    @staticmethod
    def _all_delivered(batch: _Batch, resp: Any) -> bool:
        """Settle a whole body at once when the cluster says no item failed (`errors: false`: every item 2xx).

        Looking at each item cost about half a microsecond per document; a body settles per run instead."""
        if not isinstance(resp, dict) or resp.get("errors") is not False:
            return False
        count = resp.get("item_count")  # `_FastJSON` only counted them
        if count is None:
            items = resp.get("items")
            count = len(items) if isinstance(items, list) else -1
        if count != len(batch.docs):
            return False  # `_outcomes` says what is wrong with it
        indexed: dict[str, int] = {}
        delivered = Outcome.DELIVERED
        for ack, log_type, n in batch.runs:
            ack.settle(delivered, n)
            indexed[log_type] = indexed.get(log_type, 0) + n
        for log_type, n in indexed.items():
            m.DOCUMENTS_INDEXED.labels(log_type, "created").inc(n)
        return True

    def _outcomes(self, batch: _Batch, pending: list[int], resp: Any) -> tuple[list[int], int]:
        """Settle each item by its status; returns (items to retry, how many of them were 429)."""
        items = resp.get("items") if isinstance(resp, dict) else None
        if items is None and isinstance(resp, dict) and isinstance(resp.get("item_count"), int):
            items = [_CREATED_ITEM] * resp["item_count"]  # only counted by `_FastJSON`: every one a success
        if not isinstance(items, list) or len(items) != len(pending):
            log.error("bulk_response_malformed", expected=len(pending),
                      got=len(items) if isinstance(items, list) else None)
            raise RetryableBulkError("bulk response did not list every item")
        retry: list[int] = []
        throttled = 0
        # Counted per (log type, result) and added once per response: a labelled counter update per item cost
        # about a tenth of the worker's CPU on VPC flow logs (sluice bench profile). Deliveries are settled per
        # run of items of the same unit (consecutive in a body), not one call per item.
        indexed: dict[tuple[str, str], int] = {}
        delivered = Outcome.DELIVERED
        docs = batch.docs
        run_ack: AckSet | None = None
        run = 0
        for i, item in zip(pending, items, strict=True):
            result: dict[str, Any] = item.get("create") or next(iter(item.values()), {}) if item else {}
            status = result.get("status", 0)
            if 200 <= status < 300 or status == 409:
                doc = docs[i]
                ack = doc.ack
                if ack is run_ack:
                    run += 1
                else:
                    if run_ack is not None:
                        run_ack.settle(delivered, run)
                    run_ack, run = ack, 1
                key = (doc.log_type, "exists" if status == 409 else "created")
                indexed[key] = indexed.get(key, 0) + 1
            elif status == 429 or status >= 500:
                retry.append(i)
                throttled += status == 429
            else:
                err = result.get("error") or {}
                reason = f"{err.get('type', 'error')}: {err.get('reason', '')}" if isinstance(err, dict) else str(err)
                self._reject(batch, i, f"HTTP {status}", reason)
        if run_ack is not None:
            run_ack.settle(delivered, run)
        for (log_type, outcome), n in indexed.items():
            m.DOCUMENTS_INDEXED.labels(log_type, outcome).inc(n)
        return retry, throttled

    def _reject(self, batch: _Batch, i: int, status: str, reason: str) -> None:
        doc = batch.docs[i]
        document = orjson.loads(batch.item_bytes(i).split(b"\n", 2)[1])
        index = batch.index(i)
        log.warning("document_rejected", log_type=doc.log_type, id=doc.id, index=index,
                    status=status, reason=reason[:500])
        self.dead_letters.add_nowait(
            DeadLetter("rejected", f"{status} {reason}", doc.origin, doc.log_type, offset=doc.offset, raw=doc.raw,
                       document=document, doc_id=doc.id, index=index),
            doc.ack,
        )


def _controller(cfg: OpenSearchConfig) -> AimdController:
    """AIMD between `min_in_flight` and `max_in_flight`, or a fixed `max_in_flight` when not adaptive."""
    bulk = cfg.bulk
    if not bulk.adaptive:
        return AimdController(bulk.max_in_flight, bulk.max_in_flight)
    low = min(bulk.min_in_flight, bulk.max_in_flight)
    if low != bulk.min_in_flight:
        log.warning("bulk_min_in_flight_clamped", min_in_flight=bulk.min_in_flight, max_in_flight=bulk.max_in_flight)
    return AimdController(low, bulk.max_in_flight)
