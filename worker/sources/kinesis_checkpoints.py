"""Which position of a shard may be checkpointed: the end of the longest prefix of settled batches.

GetRecords batches of one shard are read in order but settle out of order (bulk requests finish when they
finish). Checkpointing a batch's last sequence number says "everything up to here is indexed or
dead-lettered", so it is only allowed once that batch and every batch before it on the shard are settled.
A failed batch (the sink gave up: RETRY) stops the prefix: the reader must rewind to the end of the prefix
and read again; ids are deterministic, so what was indexed twice is a 409, not a duplicate.

Sequence numbers are compared as integers: they are decimal strings of varying length, and "9" > "10" as
text.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from worker.model import AckSet


@dataclass(slots=True)
class _Batch:
    sequence: int
    last: str
    ack: AckSet


class ShardProgress:
    """Batches of one shard in read order, and the sequence number up to which all are settled."""

    __slots__ = ("_batches", "failed", "settled")

    def __init__(self, settled: str | None = None) -> None:
        self._batches: deque[_Batch] = deque()
        self.settled = settled
        """Last sequence number of the settled prefix (None: nothing settled since the reader started)."""
        self.failed = False
        """A batch failed; nothing after it can be checkpointed until the reader rewinds (`rewind`)."""

    @property
    def pending(self) -> int:
        return len(self._batches)

    def add(self, last_sequence: str, ack: AckSet) -> None:
        """Record a batch whose records end at `last_sequence`; batches must be added in read order."""
        sequence = int(last_sequence)
        newest = self._batches[-1].sequence if self._batches else (int(self.settled) if self.settled else -1)
        if sequence <= newest:
            raise ValueError(f"batch ending at {last_sequence} added after one ending at {newest}")
        self._batches.append(_Batch(sequence, last_sequence, ack))

    def advance(self) -> bool:
        """Move `settled` over every leading batch that is done; True if it moved. Sets `failed` on a failure."""
        moved = False
        while self._batches and not self.failed:
            head = self._batches[0]
            if not head.ack.done:
                break
            if not head.ack.ok:
                self.failed = True
                break
            self._batches.popleft()
            self.settled = head.last
            moved = True
        return moved

    def rewind(self) -> str | None:
        """Forget every unsettled batch (their results no longer matter) and return where to read from."""
        self._batches.clear()
        self.failed = False
        return self.settled

    async def wait_oldest(self) -> None:
        """Until the oldest pending batch is done (backpressure: the reader may then read more)."""
        if self._batches:
            await self._batches[0].ack.wait()

    async def wait_all(self) -> None:
        """Until every pending batch is done (or one failed, which ends the wait: nothing after it counts)."""
        while self._batches and not self.failed:
            await self.wait_oldest()
            self.advance()
            await asyncio.sleep(0)
