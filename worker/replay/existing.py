"""Which re-driven documents OpenSearch already holds: how replay tells "re-indexed" from "already there"
(the sink settles both as delivered), and how a second replay adds nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker import telemetry as m
from worker.sinks.opensearch import OpenSearchSink

log = m.get_logger("sluice.replay")

SLICE = 500
"""Records of one dead-letter object re-driven together (one `_mget`, one `submit`), bounding memory."""


class ExistingIds:
    """Which (index, id) pairs OpenSearch already holds, by `_mget` (ids only, no sources)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def find(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for start in range(0, len(keys), SLICE):
            chunk = keys[start:start + SLICE]
            try:
                resp = await self.client.mget(body={"docs": [{"_index": i, "_id": d, "_source": False}
                                                             for i, d in chunk]})
            except Exception as exc:  # unknown is fine: `create` still adds nothing that is there
                log.warning("replay_exists_check_failed", error=str(exc)[:300], ids=len(chunk))
                continue
            docs = resp.get("docs") if isinstance(resp, dict) else None
            if not isinstance(docs, list) or len(docs) != len(chunk):
                continue
            found.update(key for key, doc in zip(chunk, docs, strict=True)
                         if isinstance(doc, dict) and doc.get("found") is True)
        return found


def existing_ids_for(sink: Any) -> ExistingIds | None:
    """The `_mget` check through the sink's own client (None for a sink that is not OpenSearch)."""
    if isinstance(sink, OpenSearchSink):
        return ExistingIds(sink.client)
    return None
