"""The shared vocabulary: where input came from, what a document is, and when a unit of work is done.

Everything that moves between a source, the pipeline, the sinks and the dead letters is one of these types,
so that the acknowledgement rules live in one place (`AckSet`) instead of in every source.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a stream of records came from; enough to find the bytes again and to derive stable ids."""

    source: str
    """Name of the configured source (the key under `sources:`)."""
    kind: str
    """`s3`, `sqs` or `kinesis`."""
    bucket: str = ""
    key: str = ""
    version: str = ""
    """S3 version id, else the ETag (without quotes): a rewritten object gets new ids."""
    size: int = 0
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def uri(self) -> str:
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.key}"
        return f"{self.kind}://{self.source}/{self.key}"

    def id_prefix(self) -> str:
        """A short, stable prefix for the ids of every document from this origin.

        Ids must be deterministic (a redelivered object yields 409 conflicts, not duplicates) and short
        (OpenSearch keeps `_id` in memory-hungry structures), so the identity of the object is hashed once.
        """
        raw = f"{self.bucket}\x00{self.key}\x00{self.version}".encode()
        digest = hashlib.blake2b(raw, digest_size=15).digest()
        return base64.urlsafe_b64encode(digest).decode()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "kind": self.kind}
        if self.bucket:
            out["bucket"] = self.bucket
        if self.key:
            out["key"] = self.key
        if self.version:
            out["version"] = self.version
        out.update(dict(self.extra))
        return out


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    """Accepted by the sink (2xx, or 409 on `create`: it was already there)."""
    DEAD_LETTERED = "dead_lettered"
    """The document itself is bad; it is durably stored in the backup bucket with a reason."""
    RETRY = "retry"
    """The infrastructure failed; the whole unit must be redelivered."""

    # Members are singletons: identity hashing is correct, and Enum's own `__hash__` (Python code hashing the
    # name) showed in profiles, since every settled document updates `AckSet.counts[outcome]`.
    __hash__ = object.__hash__


Serialized = tuple[str, bytes]
"""A document its parser already serialised: (its `@timestamp`, its JSON). Only from a parser's
`parse_serialized`, and only where nothing changes a document after its parser and every sink of the source
takes these (`Sink.takes_serialized`): for the commonest shapes, formatting the JSON text straight from the
record's values costs half of building a nested dict and serialising it."""


def timestamp_of(body: dict[str, Any] | Serialized) -> Any:
    """A document's `@timestamp` (None when it has none), whichever form its body has."""
    return body[0] if isinstance(body, tuple) else body.get("@timestamp")


@dataclass(slots=True)
class Document:
    """One parsed document on its way to a sink."""

    id: str
    log_type: str
    body: dict[str, Any] | Serialized
    ack: AckSet
    origin: Origin
    offset: int = 0
    raw: str | None = None
    """The input line, kept only while the document may still be dead-lettered for a parse-free replay."""


class AckSet:
    """Tracks every document of one unit of work (an SQS message, a Kinesis batch).

    A unit may be acknowledged only when it is sealed (its input was read to the end) and every document
    that came from it is settled (delivered or dead-lettered). Any RETRY fails the unit: it must be
    redelivered as a whole, and because ids are deterministic, the redelivery costs 409s, not duplicates.
    """

    __slots__ = ("_done", "_failure", "_on_seal", "_pending", "_sealed", "counts", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._pending = 0
        self._sealed = False
        self._failure: str | None = None
        self._done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._on_seal: list[Callable[[], None]] | None = None
        self.counts: dict[Outcome, int] = {o: 0 for o in Outcome}

    @property
    def failed(self) -> bool:
        return self._failure is not None

    @property
    def failure(self) -> str | None:
        return self._failure

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def sealed(self) -> bool:
        """The unit's input was read to the end: no more documents will be added (a sink that writes per unit,
        like the Parquet sink, may then write it)."""
        return self._sealed

    @property
    def done(self) -> bool:
        """Sealed and every document settled (or failed): `ok` is then final."""
        return self._done.done()

    @property
    def ok(self) -> bool:
        """True once done with every document delivered or dead-lettered; False while pending or when failed."""
        return self._done.done() and self._done.result()

    def add(self, n: int = 1) -> None:
        if self._sealed:
            raise RuntimeError(f"{self.name}: documents added after seal")
        self._pending += n

    def settle(self, outcome: Outcome, n: int = 1) -> None:
        self._pending -= n
        self.counts[outcome] += n
        if outcome is Outcome.RETRY and self._failure is None:
            self._failure = "sink retries exhausted"
        self._maybe_done()

    def fail(self, reason: str) -> None:
        """Mark the unit as failed for an infrastructure reason; it will be nacked once settled."""
        if self._failure is None:
            self._failure = reason
        self._maybe_done()

    def seal(self) -> None:
        self._sealed = True
        callbacks, self._on_seal = self._on_seal, None
        for callback in callbacks or ():
            callback()
        self._maybe_done()

    def on_seal(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the unit is sealed (at once if it is): a sink that writes whole units (the
        Parquet sink) starts writing then, instead of polling its units."""
        if self._sealed:
            callback()
        elif self._on_seal is None:
            self._on_seal = [callback]
        else:
            self._on_seal.append(callback)

    def _maybe_done(self) -> None:
        if self._done.done():
            return
        if self._sealed and self._pending <= 0:
            self._done.set_result(self._failure is None)

    async def wait(self) -> bool:
        """True when every document was delivered or dead-lettered; False when the unit must be retried."""
        return await asyncio.shield(self._done)

    def __repr__(self) -> str:
        return f"AckSet({self.name!r}, pending={self._pending}, sealed={self._sealed}, failure={self._failure!r})"


@dataclass(slots=True)
class DeadLetter:
    """A record that could not be delivered for a reason of its own (bad input or rejected by the sink)."""

    reason: str
    """A short, bounded category used as a metric label: `parse_error`, `rejected`, `decode_error`, ..."""
    detail: str
    origin: Origin
    log_type: str = ""
    offset: int | None = None
    raw: str | None = None
    document: dict[str, Any] | None = None
    doc_id: str | None = None
    index: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "reason": self.reason,
            "detail": self.detail,
            "origin": self.origin.as_dict(),
        }
        if self.log_type:
            rec["log_type"] = self.log_type
        if self.offset is not None:
            rec["offset"] = self.offset
        if self.raw is not None:
            rec["raw"] = self.raw
        if self.document is not None:
            rec["document"] = self.document
        if self.doc_id is not None:
            rec["id"] = self.doc_id
        if self.index is not None:
            rec["index"] = self.index
        rec.update(self.extra)
        return rec
