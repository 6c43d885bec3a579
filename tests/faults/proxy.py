"""A fault-injecting HTTP proxy in front of OpenSearch, switched between faults while a test runs.

    with FaultProxy(opensearch_url) as proxy:        # listens on 127.0.0.1:<free port>
        cfg = make_config(..., opensearch_url=proxy.url)
        proxy.set("throttle_items", share=0.3)       # 30% of bulk items answered 429
        ...
        proxy.set("pass")
        assert proxy.stats()["items_throttled"] > 0  # the fault really happened

Modes (`set(mode, share=..., status=...)`):

- `pass`: forward every request.
- `refuse`: the listening socket is closed (a connect is refused) and open connections are reset (RST).
  Any other mode opens the listener again on the same port.
- `stall`: connections are accepted and requests read, never answered; leaving `stall` resets them.
- `cut`: a share of `_bulk` requests is forwarded (so it takes effect), then the connection is reset halfway
  through the response: the client cannot know the documents were indexed.
- `status`: a share of `_bulk` requests is answered `status` (429 or 503) with OpenSearch's error body,
  without reaching OpenSearch.
- `throttle_items`: in every `_bulk` request, each item is picked with probability `share`; picked items are
  removed from the body before it is forwarded (gzip bodies are re-compressed, `Content-Encoding` and
  `Content-Length` kept right) and a 429 `es_rejected_execution_exception` result is put in their place in
  the response, in order, shaped by the request's `filter_path` as OpenSearch would.

- `throttle_get_records`: in front of Kinesis instead: a share of GetRecords calls (by `X-Amz-Target`) is
  answered 400 `ProvisionedThroughputExceededException`, as Kinesis does past 5 calls or 2 MB a second per shard.

Request-level faults (`cut`, `status`, `throttle_items`) touch only `_bulk` requests, so a worker can still
start (index templates) and health checks still pass; connection-level ones (`refuse`, `stall`) hit everything.

Why a thread: the proxy runs its own event loop in a daemon thread. Fault tests call blocking boto3 and
OpenSearch clients from the test's loop; a proxy in that loop would freeze whenever they block, which is
a fault nobody asked for. `set()` is thread-safe and returns once the fault is in force.

The downstream side (the worker's connections) is raw asyncio streams, so connections can be refused,
stalled and cut exactly; the upstream side is an aiohttp client that asks for uncompressed responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import http
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson

from worker.local_servers import free_port

Mode = Literal["pass", "refuse", "stall", "cut", "status", "throttle_items", "throttle_get_records"]
MODES: tuple[str, ...] = ("pass", "refuse", "stall", "cut", "status", "throttle_items", "throttle_get_records")

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
                         "upgrade", "content-length", "host", "accept-encoding"})
_MAX_HEADER_LINES = 200


# --- bulk body and response rewriting (pure) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One action of a `_bulk` body: its action name, metadata, and its exact bytes (one or two lines)."""

    action: str
    meta: dict[str, Any]
    raw: bytes


def split_bulk(body: bytes) -> list[BulkItem]:
    """The actions of an NDJSON `_bulk` body; `delete` has no source line, the others have one."""
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    items: list[BulkItem] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        head = orjson.loads(lines[i])
        if not isinstance(head, dict) or len(head) != 1:
            raise ValueError(f"not a bulk action line: {lines[i][:200]!r}")
        action, meta = next(iter(head.items()))
        n = 1 if action == "delete" else 2
        raw = b"".join(line + b"\n" for line in lines[i:i + n])
        items.append(BulkItem(action, meta if isinstance(meta, dict) else {}, raw))
        i += n
    return items


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    enc = (content_encoding or "identity").strip().lower()
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "identity":
        return body
    raise ValueError(f"cannot rewrite a body with Content-Encoding {content_encoding!r}")


def encode_body(body: bytes, content_encoding: str | None) -> bytes:
    enc = (content_encoding or "identity").strip().lower()
    return gzip.compress(body, compresslevel=1) if enc == "gzip" else body


def rejected_item(item: BulkItem) -> dict[str, Any]:
    """The full result OpenSearch gives an item its write thread pool had no room for."""
    result: dict[str, Any] = {"status": 429, "error": {
        "type": "es_rejected_execution_exception",
        "reason": "rejected execution of coordinating operation [fault proxy: write queue full]",
    }}
    for key in ("_index", "_id"):
        if key in item.meta:
            result[key] = item.meta[key]
    return {item.action: result}


def apply_filter_path(obj: Any, filter_path: str | None) -> Any:
    """What OpenSearch's `filter_path` keeps of a response: comma-separated dotted paths whose segments may
    hold `*` wildcards, `**` for any depth; arrays are transparent. (Exclusions with `-` are not needed by
    anything here and are not supported.)"""
    if not filter_path:
        return obj
    patterns = [p.strip().split(".") for p in filter_path.split(",") if p.strip()]
    kept = _filter(obj, patterns)
    return {} if kept is _DROP else kept


_DROP = object()


def _filter(obj: Any, patterns: list[list[str]]) -> Any:
    if any(not p for p in patterns):
        return obj  # a pattern ended here: keep the whole subtree
    if isinstance(obj, list):
        kept_list = [k for k in (_filter(v, patterns) for v in obj) if k is not _DROP]
        return kept_list if kept_list else _DROP
    if not isinstance(obj, dict):
        return _DROP
    out: dict[str, Any] = {}
    for key, value in obj.items():
        rest: list[list[str]] = []
        for p in patterns:
            if p[0] == "**":
                rest.append(p)  # ** may swallow this level...
                rest.append(p[1:])  # ...or none
                if len(p) > 1 and fnmatchcase(key, p[1]):
                    rest.append(p[2:])
            elif fnmatchcase(key, p[0]):
                rest.append(p[1:])
        if rest:
            kept = _filter(value, rest)
            if kept is not _DROP:
                out[key] = kept
    return out if out else _DROP


def merge_bulk_response(upstream: dict[str, Any] | None, items: list[BulkItem], rejected: list[int],
                        filter_path: str | None) -> dict[str, Any]:
    """The response for all `items` from the upstream's response for the forwarded ones (None if none was
    forwarded): the rejected positions get 429 results, in order, filtered like the upstream's."""
    if upstream is None:  # every item was rejected
        full = {"took": 0, "errors": True, "items": [rejected_item(items[pos]) for pos in rejected]}
        kept = apply_filter_path(full, filter_path)
        return kept if isinstance(kept, dict) else {}
    forwarded = iter(upstream.get("items") or [])
    skipped = set(rejected)
    merged: list[Any] = []
    for pos, item in enumerate(items):
        if pos in skipped:
            filtered = apply_filter_path({"items": [rejected_item(item)]}, filter_path)
            merged.append((filtered.get("items") or [{}])[0])
        else:
            merged.append(next(forwarded, {}))
    out = dict(upstream)
    if rejected and (not filter_path or "errors" in upstream or _wants(filter_path, "errors")):
        out["errors"] = True
    if "items" in upstream or not filter_path or _wants(filter_path, "items"):
        out["items"] = merged
    return out


def _wants(filter_path: str, key: str) -> bool:
    return any(fnmatchcase(key, p.strip().split(".")[0]) for p in filter_path.split(",") if p.strip())


def throttle_bulk(body: bytes, content_encoding: str | None,
                  pick: Callable[[int], bool]) -> tuple[list[BulkItem], list[int], bytes | None]:
    """Split a (possibly gzip'd) `_bulk` body, drop the items `pick(position)` chooses; returns (all items,
    dropped positions, the body to forward in the same encoding, or None when nothing is left)."""
    items = split_bulk(decode_body(body, content_encoding))
    rejected = [pos for pos in range(len(items)) if pick(pos)]
    skipped = set(rejected)
    kept = b"".join(item.raw for pos, item in enumerate(items) if pos not in skipped)
    return items, rejected, encode_body(kept, content_encoding) if kept else None


def error_body(status: int) -> bytes:
    """OpenSearch's answer to a whole request it will not take."""
    kind = "es_rejected_execution_exception" if status == 429 else "cluster_block_exception"
    reason = ("rejected execution of coordinating operation [fault proxy]" if status == 429
              else "blocked by: [SERVICE_UNAVAILABLE/2/no master]; [fault proxy]")
    return orjson.dumps({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind,
                                   "reason": reason}, "status": status})


# --- HTTP plumbing ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def is_bulk(self) -> bool:
        return self.method in ("POST", "PUT") and self.path.rstrip("/").endswith("/_bulk")

    @property
    def is_get_records(self) -> bool:
        return (self.header("x-amz-target") or "").endswith(".GetRecords")

    @property
    def filter_path(self) -> str | None:
        values = parse_qs(urlsplit(self.target).query).get("filter_path")
        return ",".join(values) if values else None


@dataclass(slots=True)
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    line = await reader.readline()
    if not line:
        return None
    method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: list[tuple[str, str]] = []
    for _ in range(_MAX_HEADER_LINES):
        h = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not h:
            break
        name, _, value = h.partition(":")
        headers.append((name.strip(), value.strip()))
    req = _Request(method, target, version, headers, b"")
    if (req.header("transfer-encoding") or "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()).strip():
                    pass  # trailers
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        req.body = b"".join(chunks)
    else:
        length = int(req.header("content-length") or 0)
        req.body = await reader.readexactly(length) if length else b""
    return req


def _response_bytes(resp: _Response, head_only: bool) -> bytes:
    reason = http.HTTPStatus(resp.status).phrase if resp.status in http.HTTPStatus._value2member_map_ else "Unknown"
    lines = [f"HTTP/1.1 {resp.status} {reason}"]
    length = None
    for k, v in resp.headers:
        lk = k.lower()
        if lk == "content-length":
            length = v
        if lk in _HOP_BY_HOP:
            continue
        lines.append(f"{k}: {v}")
    lines.append(f"Content-Length: {length if head_only and length is not None else len(resp.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + resp.body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), not FIN: the client sees 'connection reset by peer'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- the proxy -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    mode: Mode = "pass"
    share: float = 1.0
    status: int = 429


class FaultProxy:
    """See the module docstring. `start()`/`close()` or use it as a context manager."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int | None = None, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.host = host
        self.port = port or free_port(host)
        self._rng = random.Random(seed)
        self._fault = Fault()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}
        self._stall_over = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def fault(self) -> Fault:
        return self._fault

    # --- control (any thread) ---

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        self._call(self._open())
        return self

    def set(self, mode: Mode, *, share: float = 1.0, status: int = 429) -> None:
        """Switch to `mode`; returns once it is in force (for `refuse`: the port refuses, connections reset)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        if not 0.0 <= share <= 1.0:
            raise ValueError("share must be within [0, 1]")
        self._call(self._apply(Fault(mode, share, status)))

    def stats(self) -> dict[str, int]:
        """Counters since start: requests, forwarded, items_seen, items_throttled, status_<code>, cut,
        stalled, reset_connections, refused_listening (times the listener was closed), upstream_errors."""
        with self._lock:
            return dict(self._counts)

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._loop.close()
            self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Any, timeout: float = 15.0) -> Any:
        assert self._loop is not None, "proxy not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    # --- inside the proxy's loop ---

    async def _open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None),
                connector=aiohttp.TCPConnector(limit=0))
            self._stall_over = asyncio.Event()
            self._stall_over.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)

    async def _apply(self, fault: Fault) -> None:
        previous, self._fault = self._fault, fault
        if previous.mode == "stall" and fault.mode != "stall":
            self._stall_over.set()
        if fault.mode == "stall" and previous.mode != "stall":
            self._stall_over = asyncio.Event()
        if fault.mode == "refuse":
            if self._server is not None:
                self._server.close()
                self._server = None
                self._count("refused_listening")
            for writer in list(self._connections):
                _reset(writer)
                self._count("reset_connections")
        else:
            await self._open()
        await asyncio.sleep(0)

    async def _shutdown(self) -> None:
        self._stall_over.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer, task in list(self._connections.items()):
            writer.transport.abort()
            task.cancel()
        await asyncio.gather(*self._connections.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            if self._fault.mode == "refuse":  # accepted just before the listener closed
                _reset(writer)
                self._count("reset_connections")
                return
            while True:
                req = await _read_request(reader)
                if req is None:
                    return
                self._count("requests")
                if not await self._answer(req, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._connections.pop(writer, None)
            if not writer.transport.is_closing():
                writer.close()

    async def _answer(self, req: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request (or not); False when the connection is done."""
        fault = self._fault
        head_only = req.method == "HEAD"
        if fault.mode == "refuse":
            _reset(writer)
            self._count("reset_connections")
            return False
        if fault.mode == "stall":
            self._count("stalled")
            await self._stall_over.wait()
            _reset(writer)
            self._count("reset_connections")
            return False
        picked = req.is_bulk and self._rng.random() < fault.share
        if fault.mode == "status" and picked:
            self._count(f"status_{fault.status}")
            resp = _Response(fault.status, [("Content-Type", "application/json; charset=UTF-8")],
                             error_body(fault.status))
        elif fault.mode == "throttle_get_records" and req.is_get_records and self._rng.random() < fault.share:
            self._count("get_records_throttled")
            resp = _Response(400, [("Content-Type", "application/x-amz-json-1.1")], orjson.dumps({
                "__type": "ProvisionedThroughputExceededException",
                "message": "Rate exceeded for shard in stream (fault proxy)"}))
        elif fault.mode == "throttle_items" and req.is_bulk:
            resp = await self._throttle_items(req, fault.share)
        else:
            resp = await self._forward(req)
            if fault.mode == "cut" and picked:
                self._count("cut")
                data = _response_bytes(resp, head_only)
                writer.write(data[: max(1, len(data) // 2)])
                await writer.drain()
                _reset(writer)
                return False
        writer.write(_response_bytes(resp, head_only))
        await writer.drain()
        return (req.header("connection") or "").lower() != "close"

    async def _forward(self, req: _Request, body: bytes | None = None) -> _Response:
        assert self._session is not None
        headers = [(k, v) for k, v in req.headers if k.lower() not in _HOP_BY_HOP]
        headers.append(("Accept-Encoding", "identity"))  # responses we may have to rewrite come uncompressed
        try:
            async with self._session.request(req.method, self.upstream + req.target, headers=headers,
                                             data=req.body if body is None else body,
                                             skip_auto_headers=("Content-Type", "User-Agent")) as r:
                payload = await r.read()
                self._count("forwarded")
                headers_back = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in r.raw_headers]
                return _Response(r.status, headers_back, payload)
        except aiohttp.ClientError as exc:
            self._count("upstream_errors")
            return _Response(502, [("Content-Type", "application/json")],
                             orjson.dumps({"error": f"fault proxy: upstream failed: {exc}", "status": 502}))

    async def _throttle_items(self, req: _Request, share: float) -> _Response:
        encoding = req.header("content-encoding")
        try:
            items, rejected, body = throttle_bulk(req.body, encoding, lambda _pos: self._rng.random() < share)
        except ValueError:
            self._count("unparsed_bulk")
            return await self._forward(req)
        self._count("items_seen", len(items))
        self._count("items_throttled", len(rejected))
        upstream: dict[str, Any] | None = None
        headers: list[tuple[str, str]] = [("Content-Type", "application/json; charset=UTF-8")]
        if body is not None:
            resp = await self._forward(req, body)
            if resp.status != 200:
                return resp  # a whole-request answer cannot be merged item by item: pass it on
            upstream = orjson.loads(resp.body)
            headers = [(k, v) for k, v in resp.headers if k.lower() != "content-length"]
        merged = merge_bulk_response(upstream, items, rejected, req.filter_path)
        return _Response(200, headers, orjson.dumps(merged))

