"""A minimal `_bulk` endpoint for benchmarks: accepts every item, so the worker, not the engine, is measured.

It answers `_bulk` (gzip bodies too) with one `201` per item, the calls the worker makes at start-up with what
an empty cluster says, and counts what it received: `GET /_stub/stats` (requests, items, bytes, and the wall
time of the first and last bulk request), `POST /_stub/reset`. With tracking on (`POST /_stub/track`), it also
records per document-id prefix (the hash of the object the document came from: ids are `<prefix>.<offset>`)
how many items arrived and when the last one did (`GET /_stub/prefixes`), which is how `sluice bench` measures
the latency from an upload to its documents being received. Tracking is off by default: it costs a regular
expression over every body.

    python -m worker.bench.stub --port 9200     # or --port 0: a free port, printed in the ready line
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import sys
import time
from typing import Any

from aiohttp import web
from isal import isal_zlib

_ITEM = b'{"create":{"status":201}}'
_ID_PREFIX = re.compile(rb'"_id":"([A-Za-z0-9_-]+)\.')


class _State:
    def __init__(self) -> None:
        self.reset()
        self.tracking = False

    def reset(self) -> None:
        self.requests = 0
        self.items = 0
        self.bytes = 0
        self.first_at = 0.0
        self.last_at = 0.0
        self.prefixes: dict[str, list[float]] = {}
        """prefix -> [items, wall time of the last one]."""

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "items": self.items, "bytes": self.bytes, "first_at": self.first_at,
                "last_at": self.last_at, "tracking": self.tracking}


def make_app() -> web.Application:
    state = _State()

    async def bulk(request: web.Request) -> web.Response:
        body = await request.read()
        if body[:2] == b"\x1f\x8b":  # gzip bodies: isal here (aiohttp's own inflating is off, zlib is slower)
            body = isal_zlib.decompress(body, 31)
        now = time.time()
        # Lines counted as the bytes `replace` removes: bytes.count of one byte goes byte by byte (~0.5 GB/s) and
        # was half of the stub's CPU; replace finds newlines with memchr (~8 GB/s).
        n = (len(body) - len(body.replace(b"\n", b""))) // 2
        state.requests += 1
        state.items += n
        state.bytes += len(body)
        state.first_at = state.first_at or now
        state.last_at = now
        if state.tracking:
            prefixes = state.prefixes
            for raw in _ID_PREFIX.findall(body):
                entry = prefixes.get(raw.decode())
                if entry is None:
                    prefixes[raw.decode()] = [1, now]
                else:
                    entry[0] += 1
                    entry[1] = now
        # As OpenSearch answers: `took` only when `filter_path` (the worker sends one) keeps it.
        head = b'{"took":1,"errors":false,"items":[' if "took" in request.query.get("filter_path", "took") \
            else b'{"errors":false,"items":['
        payload = head + b",".join([_ITEM] * n) + b"]}"
        return web.Response(body=payload, content_type="application/json")

    async def stub_stats(_: web.Request) -> web.Response:
        return web.json_response(state.stats())

    async def stub_reset(_: web.Request) -> web.Response:
        state.reset()
        return web.json_response(state.stats())

    async def stub_track(request: web.Request) -> web.Response:
        state.tracking = request.query.get("on", "1") not in ("0", "false")
        return web.json_response(state.stats())

    async def stub_prefixes(_: web.Request) -> web.Response:
        return web.json_response(state.prefixes)

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"acknowledged": True})

    async def missing(_: web.Request) -> web.Response:
        return web.json_response({"error": {"type": "resource_not_found_exception", "reason": "stub"},
                                  "status": 404}, status=404)

    async def root(_: web.Request) -> web.Response:
        return web.json_response({"version": {"number": "2.17.0", "distribution": "opensearch"}})

    app = web.Application(client_max_size=1 << 30)
    app.router.add_post("/_bulk", bulk)
    app.router.add_get("/_stub/stats", stub_stats)
    app.router.add_post("/_stub/reset", stub_reset)
    app.router.add_post("/_stub/track", stub_track)
    app.router.add_get("/_stub/prefixes", stub_prefixes)
    app.router.add_put("/_index_template/{name}", ok)
    app.router.add_get("/_index_template/{name}", missing)
    app.router.add_get("/", root)
    return app


async def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve until cancelled; prints one JSON ready line with the URL (the port chosen when `port` is 0)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Inflating with isal in `bulk` costs the stub about a quarter less CPU than aiohttp's zlib: CPU the worker
    # processes of a `--scaling` run share the machine's cores with.
    runner = web.AppRunner(make_app(), access_log=None, auto_decompress=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(json.dumps({"url": f"http://{host}:{sock.getsockname()[1]}"}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="a _bulk endpoint that accepts everything and counts it")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one, printed at start)")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
