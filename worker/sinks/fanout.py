"""Routes each document to the sinks of its source (`sources.<name>.sinks`): OpenSearch, Parquet, or both.

A document that goes to two sinks is counted twice in its unit's AckSet (one `add` more per extra sink), so the
unit is acknowledged only when every sink has settled it; if either gives up (RETRY), the unit is redelivered
and each sink's own idempotency (409s, same file keys) absorbs the second copy. Parquet gets each batch first:
the OpenSearch sink replaces a document's dict by its serialised bytes as soon as it has taken it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from worker.config import Config, ReplaySource
from worker.model import Document
from worker.pipeline import Sink

SINK_ORDER = ("parquet", "opensearch")
"""Submission order: sinks that keep the dict before the one that frees it."""


def source_sinks(cfg: Config) -> dict[str, tuple[str, ...]]:
    """Each source's sinks in submission order. Replay sources re-drive documents under their original source's
    name, so they have no list of their own (their documents follow their original source's)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, scfg in cfg.sources.items():
        sinks: Sequence[str] = getattr(scfg, "sinks", ("opensearch",))
        out[name] = tuple(s for s in SINK_ORDER if s in sinks)
    return out


def sinks_in_use(cfg: Config) -> set[str]:
    """The sinks some source writes to; a replay source counts as OpenSearch (it checks what OpenSearch holds)."""
    used = {s for sinks in source_sinks(cfg).values() for s in sinks}
    if any(isinstance(s, ReplaySource) for s in cfg.sources.values()):
        used.add("opensearch")
    return used


class FanoutSink:
    """A `Sink` in front of the real ones: each document goes to the sinks of its source, in `SINK_ORDER`.

    `routes`: source name -> its sinks in submission order; a source not in it (a replayed document whose
    source is no longer configured) goes to `default`."""

    def __init__(self, routes: Mapping[str, Sequence[Sink]], default: Sequence[Sink]) -> None:
        if not default:
            raise ValueError("a fan-out needs a default sink")
        self.routes = {name: tuple(sinks) for name, sinks in routes.items()}
        self.default = tuple(default)
        self.sinks: tuple[Sink, ...] = tuple(dict.fromkeys([*self.default, *(s for r in self.routes.values()
                                                                            for s in r)]))
        self._last: tuple[str, tuple[Sink, ...]] = ("", self.default)
        """The last source seen and its sinks: a slice of documents is nearly always one source's."""

    def sinks_of(self, source: str) -> tuple[Sink, ...]:
        return self.routes.get(source, self.default)

    def takes_serialized(self, source: str) -> bool:
        return all(sink.takes_serialized(source) for sink in self.sinks_of(source))

    def add(self, doc: Document) -> None:
        source = doc.origin.source
        last = self._last
        sinks = last[1] if last[0] == source else self.sinks_of(source)
        if last[0] != source:
            self._last = (source, sinks)
        if len(sinks) > 1:
            doc.ack.add(len(sinks) - 1)  # before any sink can settle it
        for sink in sinks:
            sink.add(doc)

    async def ready(self) -> None:
        for sink in self.sinks:
            await sink.ready()

    async def submit(self, docs: list[Document]) -> None:
        for doc in docs:
            self.add(doc)
        await self.ready()

    def idle(self) -> None:
        for sink in self.sinks:
            sink.idle()


def build_fanout(cfg: Config, sinks: Mapping[str, Any]) -> Sink:
    """The pipeline's sink: `sinks` maps a sink name to the running sink (only the ones in use). With one sink in
    use, that sink itself (no fan-out cost per batch)."""
    if len(sinks) == 1:
        only: Sink = next(iter(sinks.values()))
        return only
    routes = {name: [sinks[s] for s in names if s in sinks] for name, names in source_sinks(cfg).items()}
    default = [sinks["opensearch"]] if "opensearch" in sinks else [sinks[s] for s in SINK_ORDER if s in sinks][:1]
    return FanoutSink(routes, default)
