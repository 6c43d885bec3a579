"""The fault proxy's bulk rewriting (pure), and its modes against a tiny loopback upstream.

The proxy is test equipment: if it rewrote bodies wrongly, the fault tests would prove nothing, so its
rewriting is pinned here on its own.
"""

from __future__ import annotations

import gzip
import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from tests.faults.proxy import (
    FaultProxy,
    apply_filter_path,
    merge_bulk_response,
    split_bulk,
    throttle_bulk,
)

FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"


def _bulk(n: int) -> bytes:
    out = b""
    for i in range(n):
        out += orjson.dumps({"create": {"_index": "ix", "_id": f"d{i}"}}) + b"\n"
        out += orjson.dumps({"n": i}) + b"\n"
    return out


def test_split_bulk_keeps_exact_bytes_and_knows_delete_has_no_source() -> None:
    body = (b'{"index":{"_index":"a","_id":"1"}}\n{"x":1}\n{"delete":{"_index":"a","_id":"2"}}\n'
            b'{"create":{"_id":"3"}}\n{"y":2}')  # no final newline on the last line
    items = split_bulk(body)
    assert [(i.action, i.meta.get("_id")) for i in items] == [("index", "1"), ("delete", "2"), ("create", "3")]
    assert b"".join(i.raw for i in items) == body + b"\n"


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_throttle_bulk_removes_picked_items_in_the_same_encoding(encoding: str | None) -> None:
    plain = _bulk(6)
    body = gzip.compress(plain) if encoding else plain
    items, rejected, forwarded = throttle_bulk(body, encoding, lambda pos: pos in (1, 4))
    assert rejected == [1, 4] and len(items) == 6
    assert forwarded is not None
    kept = gzip.decompress(forwarded) if encoding else forwarded
    assert [i.meta["_id"] for i in split_bulk(kept)] == ["d0", "d2", "d3", "d5"]


def test_throttle_bulk_everything_rejected_forwards_nothing() -> None:
    _, rejected, forwarded = throttle_bulk(_bulk(3), None, lambda pos: True)
    assert rejected == [0, 1, 2] and forwarded is None


def test_merge_puts_429s_in_place_with_the_filter_path_shape() -> None:
    items = split_bulk(_bulk(5))
    upstream = {"errors": False, "items": [{"create": {"status": 201}}, {"create": {"status": 409, "error": {
        "type": "version_conflict_engine_exception", "reason": "exists"}}}, {"create": {"status": 201}}]}
    merged = merge_bulk_response(upstream, items, [0, 3], FILTER)
    assert merged["errors"] is True
    statuses = [next(iter(i.values()))["status"] for i in merged["items"]]
    assert statuses == [429, 201, 409, 429, 201]
    first = merged["items"][0]["create"]
    assert first == {"status": 429, "error": {"type": "es_rejected_execution_exception",
                                              "reason": first["error"]["reason"]}}
    assert "_id" not in first, "filter_path drops _id, so the synthetic item must not have it either"


def test_merge_without_filter_path_gives_full_items() -> None:
    items = split_bulk(_bulk(2))
    upstream: dict[str, Any] = {"took": 3, "errors": False, "items": [
        {"create": {"_index": "ix", "_id": "d1", "status": 201}}]}
    merged = merge_bulk_response(upstream, items, [0], None)
    assert merged["took"] == 3 and merged["errors"] is True
    assert merged["items"][0] == {"create": {"_index": "ix", "_id": "d0", "status": 429, "error": {
        "type": "es_rejected_execution_exception", "reason": merged["items"][0]["create"]["error"]["reason"]}}}
    assert merged["items"][1] == upstream["items"][0]


def test_merge_when_nothing_was_forwarded() -> None:
    items = split_bulk(_bulk(2))
    merged = merge_bulk_response(None, items, [0, 1], FILTER)
    assert merged == {"errors": True, "items": [{"create": {"status": 429, "error": {
        "type": "es_rejected_execution_exception", "reason": merged["items"][0]["create"]["error"]["reason"]}}}] * 2}


def test_filter_path_wildcards_arrays_and_double_star() -> None:
    doc = {"took": 1, "errors": True, "items": [{"create": {"_id": "a", "status": 201}},
                                                {"index": {"_id": "b", "status": 429, "error": {"type": "t"}}}]}
    assert apply_filter_path(doc, "items.*.status") == {"items": [{"create": {"status": 201}},
                                                                  {"index": {"status": 429}}]}
    assert apply_filter_path(doc, "**.type") == {"items": [{"index": {"error": {"type": "t"}}}]}
    assert apply_filter_path(doc, "took,nothing") == {"took": 1}
    assert apply_filter_path(doc, "nothing") == {}


# --- modes, against a loopback upstream that counts what reaches it ------------------------------------


class _Upstream(ThreadingHTTPServer):
    bodies: list[bytes]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Upstream

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
        self.server.bodies.append(body)
        items = [{"create": {"status": 201}} for _ in split_bulk(body)]
        out = orjson.dumps({"errors": False, "items": items})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream(("127.0.0.1", 0), _Handler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _post(url: str, body: bytes, *, timeout: float = 5, gz: bool = False) -> tuple[int, dict[str, Any]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"Content-Type": "application/x-ndjson"}
    if gz:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    conn.request("POST", f"/_bulk?filter_path={FILTER}", body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, orjson.loads(data)


def test_proxy_modes_end_to_end(upstream: _Upstream) -> None:
    url = f"http://127.0.0.1:{upstream.server_address[1]}"
    with FaultProxy(url, seed=1) as proxy:
        assert _post(proxy.url, _bulk(3)) == (200, {"errors": False, "items": [{"create": {"status": 201}}] * 3})

        proxy.set("throttle_items", share=0.5)
        status, resp = _post(proxy.url, _bulk(40), gz=True)
        statuses = [i["create"]["status"] for i in resp["items"]]
        forwarded_ids = [i.meta["_id"] for i in split_bulk(upstream.bodies[-1])]
        assert status == 200 and resp["errors"] is True and len(statuses) == 40
        assert 5 < statuses.count(429) < 35
        assert forwarded_ids == [f"d{i}" for i, s in enumerate(statuses) if s == 201], "order kept"
        assert proxy.stats()["items_throttled"] == statuses.count(429)

        proxy.set("status", status=503, share=1.0)
        before = len(upstream.bodies)
        status, resp = _post(proxy.url, _bulk(2))
        assert status == 503 and resp["status"] == 503 and len(upstream.bodies) == before

        proxy.set("cut")
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            _post(proxy.url, _bulk(2))
        assert len(upstream.bodies) == before + 1, "a cut request has reached OpenSearch"

        proxy.set("stall")
        with pytest.raises(TimeoutError):
            _post(proxy.url, _bulk(1), timeout=0.5)

        proxy.set("refuse")
        with pytest.raises(ConnectionRefusedError):
            _post(proxy.url, _bulk(1))

        proxy.set("pass")
        assert _post(proxy.url, _bulk(1))[0] == 200
        stats = proxy.stats()
        assert stats["cut"] == 1 and stats["stalled"] == 1 and stats["status_503"] == 1
