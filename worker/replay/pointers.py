"""The replay queue: pointer messages consumed through `SqsConsumer` (slots, visibility heartbeat, batched
deletes), continuously for the `type: replay` source, or until the queue is empty for `sluice replay`.

A pointer that may not be replayed yet (too young for the source, or sent while a one-off replay runs) is
handed back to SQS, so that a record that just failed is not tried again before anyone could fix its cause.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from worker import telemetry as m
from worker.replay.engine import Replayer
from worker.sources.sqs_consumer import SqsConsumer, SqsMessage

log = m.get_logger("sluice.replay")


class WatchedSqs:
    """The SQS client handed to `SqsConsumer`, plus what replay needs to know about its receives.

    `SqsConsumer` knows nothing of replay, so this wrapper asks SQS for each message's SentTimestamp (to leave
    young pointers, or those sent during a one-off replay, for later) and notes when a receive started with
    nothing outstanding came back empty (the queue is drained: a one-off replay can stop).
    """

    def __init__(self, sqs: Any, max_receive_failures: int = 5) -> None:
        self._sqs = sqs
        self.sent: dict[str, float] = {}
        self.outstanding: set[str] = set()
        self.drained = asyncio.Event()
        self.broken = asyncio.Event()
        self.error = ""
        self.max_receive_failures = max_receive_failures
        self._receive_failures = 0

    async def receive_message(self, **kwargs: Any) -> Any:
        names = list(kwargs.get("MessageSystemAttributeNames") or [])
        if "SentTimestamp" not in names:
            names.append("SentTimestamp")
        kwargs["MessageSystemAttributeNames"] = names
        idle = not self.outstanding
        try:
            resp = await self._sqs.receive_message(**kwargs)
        except Exception as exc:
            self._receive_failures += 1
            if self._receive_failures >= self.max_receive_failures:
                self.error = f"receiving from the replay queue failed {self._receive_failures} times: {exc}"
                self.broken.set()
            raise
        self._receive_failures = 0
        msgs = resp.get("Messages", [])
        for raw in msgs:
            sent = raw.get("Attributes", {}).get("SentTimestamp")
            if sent is not None:
                self.sent[raw["MessageId"]] = int(sent) / 1000.0
            self.outstanding.add(raw["MessageId"])
        if idle and not msgs:
            self.drained.set()
        return resp

    def finished(self, message_id: str) -> float | None:
        """The message's handler is done; returns when it was sent (epoch seconds) if SQS said."""
        self.outstanding.discard(message_id)
        return self.sent.pop(message_id, None)

    def sent_at(self, message_id: str) -> float | None:
        return self.sent.get(message_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


class PointerQueue:
    """Replays the pointer messages of a queue: continuously (the source) or until it is empty (the command).

    `ready(sent_at)` says whether a pointer may be replayed now; a pointer that may not is handed back to
    SQS (the consumer nacks it with `retry_visibility`), and, with `release_kept`, made visible again when the
    queue is done with, so the next replay sees it at once.
    """

    def __init__(self, name: str, sqs: Any, queue_url: str, replayer: Replayer, *, max_in_flight: int,
                 wait_time: int, visibility_timeout: int, retry_visibility: int,
                 ready: Callable[[float | None], bool], release_kept: bool = False) -> None:
        self.name = name
        self.sqs = WatchedSqs(sqs)
        self.replayer = replayer
        self.ready = ready
        self.release_kept = release_kept
        self._kept: dict[str, str] = {}
        self.consumer = SqsConsumer(self.sqs, queue_url, name, self._handle, max_in_flight=max_in_flight,
                                    wait_time=wait_time, visibility_timeout=visibility_timeout,
                                    retry_visibility=retry_visibility)

    async def run(self, stop: asyncio.Event, deadline: Callable[[], float | None]) -> None:
        self.consumer.deadline = deadline
        try:
            await self.consumer.run(stop)
        finally:
            await self._release()

    async def run_until_drained(self, interrupt: asyncio.Event, grace: float) -> None:
        """Until a receive made with nothing outstanding comes back empty, the queue breaks, or `interrupt`."""
        stop = asyncio.Event()
        deadline: list[float] = []
        run = asyncio.create_task(self.run(stop, lambda: deadline[0] if deadline else None))
        waits = [asyncio.create_task(e.wait()) for e in (self.sqs.drained, self.sqs.broken, interrupt)]
        try:
            await asyncio.wait([run, *waits], return_when=asyncio.FIRST_COMPLETED)
            if interrupt.is_set():
                deadline.append(time.monotonic() + grace)
            if self.sqs.broken.is_set():
                self.replayer.counts.fail(self.sqs.error)
            stop.set()
            await run
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _handle(self, msg: SqsMessage) -> bool:
        ok = False
        try:
            if not self.ready(self.sqs.sent_at(msg.id)):
                self.replayer.counts.deferred += 1
                log.debug("replay_pointer_deferred", source=self.name, message_id=msg.id)
                return False
            ok = await self.replayer.replay_pointer(msg.body)
            return ok
        except Exception as exc:
            log.exception("replay_pointer_failed", source=self.name, message_id=msg.id, error=str(exc))
            self.replayer.counts.fail(f"pointer {msg.id}: {exc}")
            return False
        finally:
            self.sqs.finished(msg.id)
            if not ok and self.release_kept:
                self._kept[msg.id] = msg.receipt

    async def _release(self) -> None:
        """Make the pointers this run kept visible again (after the consumer's own nack of them)."""
        if not self.release_kept or not self._kept:
            return
        kept, self._kept = list(self._kept.values()), {}
        for i in range(0, len(kept), 10):
            entries = [{"Id": str(j), "ReceiptHandle": r, "VisibilityTimeout": 0}
                       for j, r in enumerate(kept[i:i + 10])]
            try:
                await self.sqs.change_message_visibility_batch(QueueUrl=self.consumer.queue_url, Entries=entries)
            except Exception as exc:  # they come back when their visibility lapses anyway
                log.warning("replay_release_failed", count=len(entries), error=str(exc)[:300])
