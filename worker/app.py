"""The worker: builds sources, the sink and the dead letters from config, and runs them until told to stop.

Shutdown (SIGTERM/SIGINT): stop receiving at once; give in-flight messages until the grace period's end to
finish; then nack what is left (so SQS redelivers it), flush the sink and the dead letters, exit 0. Nothing
is acknowledged that was not settled, so a shutdown at any moment loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import Config, EnrichConfig, KinesisSource, ReplaySource, SqsS3Source, SqsSource
from worker.dead_letters import DeadLetters
from worker.pipeline import Pipeline
from worker.setup import source_indices
from worker.sinks.fanout import build_fanout, sinks_in_use
from worker.sinks.opensearch import OpenSearchSink, build_client
from worker.sources.sqs_s3 import SqsS3SourceRunner

if TYPE_CHECKING:
    from worker.enrich import Enricher

log = m.get_logger("sluice.app")


GC_THRESHOLDS = (50_000, 20, 20)
"""A log shipper allocates millions of short-lived dicts a second; with CPython's default (700, 10, 10) the
young-generation collector runs every few hundred lines and costs about as much as parsing (bench/parsers.py).
Documents hold no reference cycles, so collecting rarely loses nothing."""


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, config) out of every future collection, and collect rarely."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def build_enricher(cfg: EnrichConfig) -> Enricher | None:
    """The enrichment step, or None when every enrichment is off (the default): no cost, no imports."""
    if not (cfg.geoip_city_database or cfg.geoip_asn_database or cfg.user_agent):
        return None
    from worker.enrich import Enricher

    return Enricher(cfg.geoip_city_database, cfg.geoip_asn_database, cfg.user_agent, cfg.cache_size)


class SourceRunner(Protocol):
    name: str

    async def run(self, stop: asyncio.Event, drain_deadline: list[float]) -> None: ...


class Worker:
    """`await Worker(cfg).run()`; `request_stop()` (or a signal) begins a graceful shutdown."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.stop = asyncio.Event()
        self.ready = False
        self.sources: list[Any] = []
        self._drain_deadline: list[float] = []

    def request_stop(self) -> None:
        if not self.stop.is_set():
            self._drain_deadline.append(time.monotonic() + max(0.5, self.cfg.worker.shutdown_grace - 3.0))
            log.info("shutdown_requested", grace=self.cfg.worker.shutdown_grace)
            m.READY.set(0)
            self.ready = False
            self.stop.set()

    async def run(self, install_signals: bool = True) -> None:
        loop = asyncio.get_running_loop()
        enricher = build_enricher(self.cfg.enrich)  # a bad database path fails here, before anything starts
        tune_gc()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        health = await self._start_health_server()
        try:
            async with AwsClients(self.cfg.aws) as aws, DeadLetters(self.cfg.dead_letters, aws) as dead_letters:
                client = build_client(self.cfg.opensearch, self.cfg.aws.region)
                try:
                    sink = OpenSearchSink(self.cfg.opensearch, dead_letters, client,
                                          source_indices=source_indices(self.cfg))
                    used = sinks_in_use(self.cfg)
                    if self.cfg.opensearch.install_templates and "opensearch" in used:
                        await self._install_templates(sink)
                    await sink.__aenter__()
                    parquet = None
                    if "parquet" in used:
                        from worker.sinks.parquet import ParquetSink  # pyarrow costs ~70 MB RSS: only when used

                        parquet = ParquetSink(self.cfg.parquet, aws)
                        await parquet.__aenter__()
                    try:
                        running: dict[str, Any] = {"opensearch": sink, "parquet": parquet}
                        out = build_fanout(self.cfg, {name: running[name] for name in used})
                        pipeline = Pipeline(self.cfg.pipeline, out, dead_letters, enricher)
                        self.sources = [self._build_source(name, scfg, aws, pipeline, dead_letters)
                                        for name, scfg in self.cfg.sources.items()]
                        self.ready = True
                        m.READY.set(1)
                        log.info("worker_started", sources=list(self.cfg.sources))
                        async with asyncio.TaskGroup() as tg:
                            for src in self.sources:
                                tg.create_task(src.run(self.stop, self._drain_deadline), name=f"source-{src.name}")
                        log.info("sources_drained")
                    finally:
                        await asyncio.gather(sink.close(timeout=self._remaining_grace()),
                                             *([parquet.close(timeout=self._remaining_grace())] if parquet else []))
                finally:
                    await client.close()
        finally:
            if health is not None:
                await health.cleanup()
            if enricher is not None:
                enricher.close()
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        log.info("worker_stopped")

    def _remaining_grace(self) -> float | None:
        if not self._drain_deadline:
            return None
        return max(0.5, self._drain_deadline[0] + 2.0 - time.monotonic())

    async def _install_templates(self, sink: OpenSearchSink) -> None:
        """Templates must exist before the first document creates an index; retry while OpenSearch starts."""
        delay = 1.0
        while not self.stop.is_set():
            try:
                names = await sink.setup()
                log.info("index_templates_installed", templates=names)
                return
            except Exception as exc:
                log.warning("index_templates_failed", error=str(exc)[:300], retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
                delay = min(30.0, delay * 2)

    def _build_source(self, name: str, scfg: Any, aws: AwsClients, pipeline: Pipeline,
                      dead_letters: DeadLetters) -> SourceRunner:
        if isinstance(scfg, SqsS3Source):
            return SqsS3SourceRunner(name, scfg, aws, pipeline, dead_letters, self.cfg.pipeline)
        if isinstance(scfg, ReplaySource):
            from worker.sources.replay import ReplaySourceRunner

            return ReplaySourceRunner(name, scfg, aws, pipeline, dead_letters, self.cfg)
        if isinstance(scfg, SqsSource):
            from worker.sources.sqs import SqsSourceRunner

            return SqsSourceRunner(name, scfg, aws, pipeline, dead_letters)
        if isinstance(scfg, KinesisSource):
            from worker.sources.kinesis import KinesisSourceRunner

            return KinesisSourceRunner(name, scfg, aws, pipeline, dead_letters)
        raise ValueError(f"sources.{name}: unsupported type {scfg.type}")

    async def _start_health_server(self) -> web.AppRunner | None:
        tcfg = self.cfg.telemetry
        if tcfg.metrics_port == 0:
            return None

        from worker.health import serve_health

        runner = await serve_health(tcfg.metrics_host, tcfg.metrics_port, lambda: None,
                                    lambda: None if self.ready else "not ready")
        log.info("metrics_server_started", host=tcfg.metrics_host, port=tcfg.metrics_port)
        return runner


def run_worker(cfg: Config) -> None:
    import uvloop

    uvloop.run(Worker(cfg).run())
