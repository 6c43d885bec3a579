"""A minimal `_bulk` endpoint for benchmarks: accepts every item, so the worker, not the engine, is measured.

It answers `_bulk` (gzip bodies too) with one `201` per item, index templates with `acknowledged`, and
counts what it received (`GET /_stub/stats`). Run: `python bench/bulk_stub.py --port 9200`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from aiohttp import web
from isal import igzip

_ITEM = b'{"create":{"status":201}}'


def make_app() -> web.Application:
    stats = {"requests": 0, "items": 0, "bytes": 0, "started": time.time()}

    async def bulk(request: web.Request) -> web.Response:
        body = await request.read()
        if body[:2] == b"\x1f\x8b":  # aiohttp usually inflates Content-Encoding: gzip itself
            body = igzip.decompress(body)
        n = body.count(b"\n") // 2
        stats["requests"] += 1
        stats["items"] += n
        stats["bytes"] += len(body)
        payload = b'{"took":1,"errors":false,"items":[' + b",".join([_ITEM] * n) + b"]}"
        return web.Response(body=payload, content_type="application/json")

    async def stub_stats(_: web.Request) -> web.Response:
        return web.json_response(stats)

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"acknowledged": True})

    async def root(_: web.Request) -> web.Response:
        return web.json_response({"version": {"number": "2.17.0", "distribution": "opensearch"}})

    app = web.Application(client_max_size=1 << 30)
    app.router.add_post("/_bulk", bulk)
    app.router.add_get("/_stub/stats", stub_stats)
    app.router.add_put("/_index_template/{name}", ok)
    app.router.add_get("/", root)
    return app


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    print(json.dumps({"url": f"http://127.0.0.1:{args.port}"}), flush=True)
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
