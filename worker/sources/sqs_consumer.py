"""The SQS half of every SQS-fed source: receive, keep invisible while working, delete or nack.

One place owns the acknowledgement rules for SQS: a message is deleted only after its handler returned True
(every document settled); it is made visible again, after a delay that grows with its receive count, when
the handler returned False or raised; it is kept invisible (visibility extended in batches) while the handler
runs. The queue's own redrive policy moves messages that keep failing to its DLQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from worker import telemetry as m
from worker.model import AckSet

log = m.get_logger("sluice.sqs")

Handler = Callable[["SqsMessage"], Awaitable[bool]]


@dataclass(slots=True)
class SqsMessage:
    id: str
    receipt: str
    body: str
    receive_count: int
    sent_at_ms: int | None = None
    """SentTimestamp (epoch ms): the same on every delivery, so it can date records that carry no time."""
    received_at: float = field(default_factory=time.monotonic)
    extended_at: float = field(default_factory=time.monotonic)


async def message_settled(source: str, msg: SqsMessage, ack: AckSet) -> bool:
    """Seal a message's unit and wait for it: True when every document is settled and the message may be
    deleted; a failure is logged with its reason (the message is then made visible again)."""
    ack.seal()
    ok = await ack.wait()
    if not ok:
        log.warning("sqs_message_failed", source=source, message_id=msg.id, reason=ack.failure,
                    receive_count=msg.receive_count)
    return ok


class SqsConsumer:
    """Runs `handler` for every message of `queue_url`, at most `max_in_flight` at a time.

    Lifecycle: `await consumer.run(stop)` returns after `stop` is set and every in-flight message is either
    finished or, once `deadline()` passes, cancelled and made visible again.
    """

    def __init__(self, sqs: Any, queue_url: str, source: str, handler: Handler, *, max_in_flight: int = 10,
                 wait_time: int = 20, visibility_timeout: int = 300, retry_visibility: int = 30) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.source = source
        self.handler = handler
        self.max_in_flight = max_in_flight
        self.wait_time = wait_time
        self.visibility_timeout = visibility_timeout
        self.retry_visibility = retry_visibility
        self._free = max_in_flight
        self._receive_at = min(10, max(1, max_in_flight // 2))
        """Free slots before the next receive: half of them (up to a full batch of 10), so that a receive is
        in flight while the other half is still being worked on, and each receive asks for several messages
        instead of one per slot freed (each call costs about as much CPU as a small object's GetObject)."""
        self._slot_freed = asyncio.Event()
        self._in_flight: dict[str, tuple[SqsMessage, asyncio.Task[None]]] = {}
        """By receipt handle, not message id: a message whose visibility lapsed (SQS unreachable, so no extension)
        can be received again while its first delivery is still in flight, and each delivery must be tracked
        (extended, drained, counted) on its own."""
        self._delete_queue: asyncio.Queue[tuple[SqsMessage, asyncio.Future[None]]] = asyncio.Queue()
        self.deadline: Callable[[], float | None] = lambda: None
        """When stopping: the monotonic time by which in-flight work must be finished or handed back."""

    # --- main loop -----------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        deleter = asyncio.create_task(self._delete_loop(), name=f"{self.source}-deleter")
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"{self.source}-heartbeat")
        try:
            await self._receive_loop(stop)
            await self._drain()
        finally:
            # Deletes requested by finished handlers must go out before we stop.
            await self._delete_queue.join()
            for task in (deleter, heartbeat):
                task.cancel()
            await asyncio.gather(deleter, heartbeat, return_exceptions=True)

    async def _receive_loop(self, stop: asyncio.Event) -> None:
        stop_wait = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                if self._free < self._receive_at:
                    # The slots are busy: that is the backpressure. Receive nothing until enough free up.
                    self._slot_freed.clear()
                    slot = asyncio.create_task(self._slot_freed.wait())
                    await asyncio.wait({stop_wait, slot}, return_when=asyncio.FIRST_COMPLETED)
                    slot.cancel()
                    continue
                receive = asyncio.create_task(self._receive(min(10, self._free)))
                await asyncio.wait({receive, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    # Stopping during a long poll: let it finish (it ends within wait_time), then hand back
                    # whatever it returned at once instead of working on it.
                    limit = self.wait_time + 5.0
                    deadline = self.deadline()
                    if deadline is not None:
                        limit = min(limit, max(0.0, deadline - time.monotonic()))
                    with contextlib.suppress(Exception):
                        msgs = await asyncio.wait_for(receive, limit)
                        await self._release_unstarted(msgs)
                    return
                try:
                    msgs = receive.result()
                except Exception as exc:
                    log.warning("sqs_receive_failed", source=self.source, error=str(exc))
                    await asyncio.sleep(1.0)
                    continue
                if stop.is_set():
                    await self._release_unstarted(msgs)
                    return
                for msg in msgs:
                    self._start(msg)
        finally:
            stop_wait.cancel()

    async def _receive(self, n: int) -> list[SqsMessage]:
        resp = await self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=n, WaitTimeSeconds=self.wait_time,
            VisibilityTimeout=self.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        out = []
        for raw in resp.get("Messages", []):
            attrs = raw.get("Attributes", {})
            count = int(attrs.get("ApproximateReceiveCount", "1"))
            sent = attrs.get("SentTimestamp")
            out.append(SqsMessage(raw["MessageId"], raw["ReceiptHandle"], raw.get("Body", ""), count,
                                  int(sent) if sent and sent.isdigit() else None))
        if out:
            m.SQS_MESSAGES_RECEIVED.labels(self.source).inc(len(out))
        return out

    def _start(self, msg: SqsMessage) -> None:
        self._free -= 1
        task = asyncio.create_task(self._process(msg), name=f"{self.source}-msg-{msg.id}")
        self._in_flight[msg.receipt] = (msg, task)
        m.MESSAGES_IN_FLIGHT.labels(self.source).set(len(self._in_flight))

    async def _process(self, msg: SqsMessage) -> None:
        try:
            ok = False
            try:
                ok = await self.handler(msg)
            except asyncio.CancelledError:
                await asyncio.shield(self._nack(msg, "shutdown", 0))
                raise
            except Exception as exc:
                log.exception("sqs_message_failed", source=self.source, message_id=msg.id, error=str(exc))
            if ok:
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._delete_queue.put_nowait((msg, done))
                await done
            else:
                await self._nack(msg, "failed", self._backoff(msg))
        finally:
            # The slot frees only once the message is deleted or nacked: `max_in_flight` bounds the messages
            # received and not yet acknowledged (docs/architecture.md), not only those being parsed.
            self._in_flight.pop(msg.receipt, None)
            self._free += 1
            self._slot_freed.set()
            m.MESSAGES_IN_FLIGHT.labels(self.source).set(len(self._in_flight))

    async def _drain(self) -> None:
        """Wait for in-flight messages until the drain deadline, then cancel (which nacks) the rest."""
        tasks = [t for _, t in self._in_flight.values()]
        if not tasks:
            return
        deadline = self.deadline()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            log.warning("sqs_messages_abandoned", source=self.source, count=len(pending),
                        note="made visible again for redelivery")
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # --- acknowledgement -----------------------------------------------------------------------------------

    def _backoff(self, msg: SqsMessage) -> int:
        """Visibility for a failed message: grows with its receive count, so a broken dependency is not
        hammered in a tight loop (capped at 15 minutes)."""
        return int(min(900, self.retry_visibility * 2 ** max(0, msg.receive_count - 1)))

    async def _nack(self, msg: SqsMessage, reason: str, visibility: int) -> None:
        try:
            await self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=msg.receipt,
                                                     VisibilityTimeout=visibility)
        except Exception as exc:  # the visibility timeout will lapse anyway: redelivery is only later
            log.warning("sqs_nack_failed", source=self.source, message_id=msg.id, error=str(exc))
        m.SQS_MESSAGES_NACKED.labels(self.source, reason).inc()
        log.info("sqs_message_nacked", source=self.source, message_id=msg.id, reason=reason,
                 visible_in=visibility, receive_count=msg.receive_count)

    async def _release_unstarted(self, msgs: list[SqsMessage]) -> None:
        for msg in msgs:
            await self._nack(msg, "shutdown", 0)

    async def _delete_loop(self) -> None:
        """Batch deletes: up to 10 per call, waiting up to 50 ms for a batch to fill."""
        queue = self._delete_queue
        while True:
            batch = [await queue.get()]
            deadline = time.monotonic() + 0.05
            while len(batch) < 10:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            try:
                await self._delete_batch(batch)
            finally:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
                    queue.task_done()

    async def _delete_batch(self, batch: list[tuple[SqsMessage, asyncio.Future[None]]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": msg.receipt} for i, (msg, _) in enumerate(batch)]
        try:
            resp = await self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:
            # Not deleting is safe: the message comes back and its documents are 409s.
            log.warning("sqs_delete_failed", source=self.source, count=len(batch), error=str(exc))
            return
        failed = {f["Id"] for f in resp.get("Failed", [])}
        for f in resp.get("Failed", []):
            log.warning("sqs_delete_failed", source=self.source, code=f.get("Code"), detail=f.get("Message"))
        ok = len(batch) - len(failed)
        m.SQS_MESSAGES_DELETED.labels(self.source).inc(ok)
        for i, (msg, _) in enumerate(batch):
            if str(i) not in failed:
                log.debug("sqs_message_deleted", source=self.source, message_id=msg.id)

    async def _heartbeat_loop(self) -> None:
        """Extend the visibility of messages still in flight before it lapses, in batches of 10."""
        period = max(1.0, self.visibility_timeout / 3)
        while True:
            await asyncio.sleep(min(period, 5.0))
            now = time.monotonic()
            due = [msg for msg, _ in self._in_flight.values() if now - msg.extended_at >= period]
            for i in range(0, len(due), 10):
                chunk = due[i:i + 10]
                entries = [{"Id": str(j), "ReceiptHandle": msg.receipt, "VisibilityTimeout": self.visibility_timeout}
                           for j, msg in enumerate(chunk)]
                try:
                    await self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
                except Exception as exc:
                    log.warning("sqs_visibility_extension_failed", source=self.source, error=str(exc))
                    continue
                for msg in chunk:
                    msg.extended_at = now
                m.SQS_VISIBILITY_EXTENSIONS.labels(self.source).inc(len(chunk))
