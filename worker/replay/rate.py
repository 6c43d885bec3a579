"""The replay rate limit (`--rate`, `rate:`): documents per second, so a replay does not starve live ingestion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from worker.model import Document
from worker.pipeline import Sink


class TokenBucket:
    """At most `rate` units a second on average, in bursts of up to `burst`; rate 0 means unlimited.

    A request larger than what is in the bucket goes into debt and waits for it, so a big batch is slowed
    down, never refused, and concurrent callers queue up fairly (each reservation is made at once).
    """

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self.tokens = self.burst
        self.updated = clock()

    def reserve(self, n: float) -> float:
        """Take `n` units; returns the seconds to wait before using them."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def acquire(self, n: float) -> None:
        delay = self.reserve(n)
        if delay > 0:
            await asyncio.sleep(delay)


class RateLimitedSink:
    """A `Sink` that lets documents through at the bucket's rate, so a replay does not starve live ingestion."""

    def __init__(self, sink: Sink, bucket: TokenBucket) -> None:
        self.sink = sink
        self.bucket = bucket
        self._added = 0
        """Documents `add` passed on since the last `ready`, which takes their tokens."""

    def takes_serialized(self, source: str) -> bool:
        return self.sink.takes_serialized(source)

    def add(self, doc: Document) -> None:
        self._added += 1
        self.sink.add(doc)

    async def ready(self) -> None:
        added, self._added = self._added, 0
        if added:
            await self.bucket.acquire(added)
        await self.sink.ready()

    async def submit(self, docs: list[Document]) -> None:
        if docs:
            await self.bucket.acquire(len(docs))
        await self.sink.submit(docs)

    def idle(self) -> None:
        self.sink.idle()
