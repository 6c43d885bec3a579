"""The port every Sluice process serves on `telemetry.metrics_port`: `/metrics`, `/healthz`, `/readyz`, and
nothing else. A single worker and the `--processes` supervisor serve the same endpoints; only what they check
differs, so each passes its own checks and registry here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

Check = Callable[[], str | None]
"""None when all is well, else the reason (answered with 503)."""


async def serve_health(host: str, port: int, healthy: Check, ready: Check,
                       registry: CollectorRegistry = REGISTRY) -> web.AppRunner:
    """Start the server; the caller cleans the returned runner up. A port in use raises OSError at once."""

    async def metrics(_: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(registry))
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return resp

    def answer(check: Check, ok: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_: web.Request) -> web.Response:
            problem = check()
            return web.Response(text=ok) if problem is None else web.Response(text=problem, status=503)
        return handler

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", answer(healthy, "ok"))
    app.router.add_get("/readyz", answer(ready, "ready"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
