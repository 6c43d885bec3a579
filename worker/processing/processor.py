"""A source's `processing` settings applied in the order the pipeline needs them.

Line units (S3 objects, SQS bodies, Kinesis records framed as lines): `lines` per chunk of frames, `finish` at
the end of the unit; a stream whose lines trickle in across calls uses `expired` / `flush` for the multiline
timeout. JSON units (`json_content_type` set): `events` (or `expanded_events`) on the unit's whole text.
Documents: `decorate` on every body the parser made. Records a log type framed itself as JSON: `records`.

A processor holds the pending multiline event of ONE stream: use one per unit, or per stream (Kinesis shard)
when lines trickle in; never share one between units processed at the same time. Building one is cheap.
"""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import orjson

from worker.config import ProcessingConfig
from worker.processing.filters import EventFilter
from worker.processing.json_events import expand_event_list, split_json_ex
from worker.processing.multiline import Multiline

Frame = tuple[int, str]
Failures = list[tuple[int, str, str]]


def json_text(value: Any) -> str:
    """Compact JSON of a decoded value (keys in document order, no spaces): what include / exclude test on a
    JSON event, and what a non-object JSON event becomes so that the parsers get `str | dict` records."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits (decoded by the stdlib) and the like
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _record(value: Any) -> Any:
    return value if isinstance(value, (dict, str)) else json_text(value)


def _field_leaves(fields: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) of every configured field: dotted keys split, nested objects walked to their leaves."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in fields.items():
        path = (*prefix, *key.split("."))
        if isinstance(value, dict) and value:
            out.extend(_field_leaves(value, path))
        else:
            out.append((path, value))
    return out


class Processor:
    """Include/exclude, multiline, JSON events, expansion, tags and fields of one source, for one stream."""

    __slots__ = ("_events_multiline", "_expand_field", "_fields", "_roots", "_tags", "active", "cfg", "decorates",
                 "filter", "handles_json", "handles_lines", "json_mode", "multiline")

    def __init__(self, cfg: ProcessingConfig) -> None:
        self.cfg = cfg
        self.filter = EventFilter(cfg.include, cfg.exclude)
        self.multiline = Multiline(cfg.multiline) if cfg.multiline is not None else None
        # `events` joins the lines of non-JSON text in `auto` mode with a multiline of its own, so that a call
        # on a whole unit never disturbs the pending event of `lines`.
        self._events_multiline = Multiline(cfg.multiline) if cfg.multiline is not None else None
        self.json_mode = cfg.json_content_type
        self._expand_field = cfg.expand_event_list_from_field
        self._roots = cfg.root_fields_to_add_to_expanded_event
        self._tags = list(dict.fromkeys(cfg.tags))
        self._fields: list[tuple[tuple[str, ...], tuple[str, ...], Any]] = []
        for path, value in _field_leaves(cfg.fields):
            # Joined tails (`service.name`, then `name`...): a document holding the field under a dotted key
            # holds it too, and its own value wins.
            tails = tuple(".".join(path[i:]) for i in range(len(path) - 1))
            self._fields.append((path, tails, value))
        self.handles_lines = self.multiline is not None or self.filter.active
        """Whether `lines` / `finish` change anything (else the pipeline skips them)."""
        self.handles_json = self.json_mode != "disabled"
        """Whether the unit's text is split by `events` instead of by the log type's framing."""
        self.decorates = bool(self._tags or self._fields)
        """Whether `decorate` changes anything."""
        self.active = self.handles_lines or self.handles_json or self.decorates
        """False for the default config: the pipeline skips the processor entirely."""

    @property
    def excluded(self) -> int:
        """Events refused by include / exclude so far (`sluice_events_excluded_total`)."""
        return self.filter.excluded

    @property
    def multiline_splits(self) -> int:
        """Events cut by multiline `max_lines` / `max_bytes` so far."""
        return sum(m.splits for m in (self.multiline, self._events_multiline) if m is not None)

    # Lines.

    def lines(self, frames: list[Frame], now: float) -> list[Frame]:
        """Line frames -> event frames: multiline (the last event may stay pending), then include / exclude."""
        if self.multiline is not None:
            frames = self.multiline.feed(frames, now)
        return self._keep_lines(frames)

    def finish(self) -> list[Frame]:
        """End of a unit: the pending multiline event, filtered."""
        return self.flush()

    def expired(self, now: float) -> bool:
        """Whether the pending multiline event has waited `multiline.timeout` seconds (then call `flush`)."""
        return self.multiline is not None and self.multiline.expired(now)

    def flush(self) -> list[Frame]:
        """The pending multiline event, filtered (timeout flush; `finish` does the same at a unit's end)."""
        if self.multiline is None:
            return []
        return self._keep_lines(self.multiline.flush())

    def _keep_lines(self, frames: list[Frame]) -> list[Frame]:
        if not self.filter.active or not frames:
            return frames
        keep = self.filter.keep
        return [f for f in frames if keep(f[1])]

    def records(self, frames: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        """Include / exclude on records a log type framed itself (strings tested as they are, anything else
        on its compact JSON text)."""
        if not self.filter.active or not frames:
            return frames
        keep = self.filter.keep
        return [f for f in frames if keep(f[1] if isinstance(f[1], str) else json_text(f[1]))]

    # JSON events.

    def expanded_events(self, text: str, max_bytes: int) -> tuple[list[tuple[int, str, Any]], Failures]:
        """A JSON unit's events as `(offset, sub, record)`, and its failures `(offset, raw text, reason)`.

        `offset` is the byte offset of the event's document (or line); `sub` is "" for an event kept whole and
        the item's index in the list (`"0"`, `"1"`, ...) for an expanded item, counted before include / exclude
        so it never changes: `(offset, sub)` is unique in the unit and fits `Emitted`'s sub-id slot. Records are
        `dict` or `str` (a JSON array or scalar becomes its compact JSON text). An event whose list is empty is
        kept whole (nothing would be indexed from it otherwise).
        """
        events, failures, as_lines = split_json_ex(text, self.json_mode, max_bytes)
        out: list[tuple[int, str, Any]] = []
        filt = self.filter if self.filter.active else None
        if as_lines:  # `auto` found no JSON: lines, joined as the source's multiline says
            ml = self._events_multiline
            if ml is not None:
                frames = cast(list[Frame], events)
                events = cast(list[tuple[int, Any]], ml.feed(frames, 0.0) + ml.flush())
            for offset, line in events:
                if filt is None or filt.keep(line):
                    out.append((offset, "", line))
            return out, failures
        field = self._expand_field
        for offset, value in events:
            items = expand_event_list(value, field, self._roots) if field is not None else None
            if items:
                for i, item in enumerate(items):
                    record = _record(item)
                    if filt is None or filt.keep(record if isinstance(record, str) else json_text(record)):
                        out.append((offset, str(i), record))
            else:
                record = _record(value)
                if filt is None or filt.keep(record if isinstance(record, str) else json_text(record)):
                    out.append((offset, "", record))
        return out, failures

    def events(self, text: str, max_bytes: int) -> tuple[list[tuple[int, Any]], Failures]:
        """`expanded_events` as plain `(offset, record)` frames: item `i` of the document at offset `o` gets
        offset `o + i`. Still unique: a list of n items takes more than n bytes of its document's text, so
        `o + i` stays inside that document's byte span, which no other event's offset falls in."""
        triples, failures = self.expanded_events(text, max_bytes)
        return [(offset + int(sub) if sub else offset, record) for offset, sub, record in triples], failures

    # Documents.

    def decorate(self, body: dict[str, Any]) -> None:
        """Add the source's `tags` (merged, no duplicates) and `fields` (nested; the document's values win)."""
        tags = self._tags
        if tags:
            have = body.get("tags")
            if have is None:
                body["tags"] = list(tags)
            elif isinstance(have, list):
                missing = [t for t in tags if t not in have]
                if missing:
                    body["tags"] = have + missing  # a new list: the old one may be shared (expanded items)
            elif isinstance(have, str):
                body["tags"] = [have, *(t for t in tags if t != have)]
            # any other type is the document's own (odd) value, and it wins
        for path, tails, value in self._fields:
            _set_default(body, path, tails, value)


def _set_default(body: dict[str, Any], path: tuple[str, ...], tails: tuple[str, ...], value: Any) -> None:
    node = body
    last = len(path) - 1
    for i, key in enumerate(path):
        if i == last:
            if key not in node:
                node[key] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
            return
        if tails[i] in node:  # the document has it under a dotted key
            return
        child = node.get(key)
        if child is None and key not in node:
            leaf: Any = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
            for part in reversed(path[i + 1 :]):
                leaf = {part: leaf}
            node[key] = leaf
            return
        if not isinstance(child, dict):
            return  # the document's own non-object value wins
        node = child
