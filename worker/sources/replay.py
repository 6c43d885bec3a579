"""`type: replay`: the worker re-drives dead letters from the replay queue for as long as it runs.

The engine (`worker/replay/engine.py`) is the one `sluice replay` uses; this source only consumes the queue
continuously (`worker/replay/pointers.py`) and leaves pointers younger than `min_age` for later, so a record
that just failed is not tried again before anyone could have fixed its cause.
"""

from __future__ import annotations

import asyncio
import time

from worker.aws import AwsClients
from worker.config import Config, ReplaySource
from worker.dead_letters import DeadLetters
from worker.pipeline import Pipeline
from worker.replay.engine import Replayer, ReplaySettings
from worker.replay.existing import existing_ids_for
from worker.replay.pointers import PointerQueue


class ReplaySourceRunner:
    """`type: replay`: re-drives pointer messages from the replay queue for as long as the worker runs."""

    def __init__(self, name: str, cfg: ReplaySource, aws: AwsClients, pipeline: Pipeline,
                 dead_letters: DeadLetters, config: Config) -> None:
        self.name = name
        self.cfg = cfg
        self.aws = aws
        self.config = config
        settings = ReplaySettings(max_attempts=cfg.max_attempts, rate=cfg.rate)
        self.replayer = Replayer(config, settings, aws, pipeline, dead_letters, existing_ids_for(pipeline.sink),
                                 name=name)
        self.queue: PointerQueue | None = None

    def ready(self, sent_at: float | None) -> bool:
        """A pointer is replayed once it has waited `min_age` seconds (unknown age: at once)."""
        return sent_at is None or time.time() - sent_at >= self.cfg.min_age

    async def run(self, stop: asyncio.Event, drain_deadline: list[float]) -> None:
        cfg = self.cfg
        self.queue = PointerQueue(
            self.name, await self.aws.client("sqs"), cfg.queue_url or self.config.dead_letters.replay_queue_url,
            self.replayer, max_in_flight=cfg.max_in_flight, wait_time=cfg.wait_time,
            visibility_timeout=cfg.visibility_timeout,
            # A deferred pointer comes back after about min_age; a failed one after that, doubling (SqsConsumer).
            retry_visibility=max(1, min(900, int(cfg.min_age))), ready=self.ready)
        await self.queue.run(stop, lambda: drain_deadline[0] if drain_deadline else None)
