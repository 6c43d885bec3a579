"""What replay does with one dead letter: pure rules, no I/O, so that each is unit-tested.

What a dead-letter record becomes (`plan_record`):
- `rejected` / `unserializable` with the document kept: the document is submitted again with its original id
  (index from its own `@timestamp` and today's `opensearch.index`, which is the original index unless the
  pattern was changed on purpose); `create` makes a second replay add nothing.
- `parse_error` (and a rejected record without its document): the raw record is parsed again with today's
  parser for its log type and the options of the source it came from, and indexed under the id the original
  would have had (`Origin.id_prefix()` + offset), so a later redelivery of the object is a 409, not a copy.
- anything else (`bad_notification`, `object_missing`, over-long lines of which only the head was kept,
  invalid JSON) cannot be re-driven from the record alone and is parked under `<prefix>poison/` at once.
- `object` pointers (whole objects copied to the backup bucket) are re-ingested (`worker/replay/objects.py`).

Attempts: a replayed record carries `attempts` (replays that failed) in its origin, so whatever writes it
back (the sink rejecting it again, a parse failing again, replay itself) keeps the count without knowing about
replay. A record already failed `max_attempts` times is parked under `poison/` the next time it is read.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from worker.dead_letters import POINTER_TYPE
from worker.model import Origin
from worker.parsers import log_types

OVERSIZE_MARK = "exceeds pipeline.max_line_bytes"
"""The pipeline's detail for an over-long line, of which only the first bytes were kept."""
INVALID_JSON_MARK = "invalid JSON"
"""The pipeline's detail for a JSON record that does not parse as JSON (no parser can change that)."""
RESUBMIT_REASONS = frozenset({"rejected", "unserializable"})
REPARSE_REASONS = frozenset({"parse_error", "rejected", "unserializable"})
ARCHIVE_REASONS = frozenset({"invalid_utf8"})
"""Records kept for their original bytes only: the line was indexed (with U+FFFD) or is part of a record."""
_LINE_LENGTH = re.compile(r"line of (\d+) bytes")


class Action(enum.Enum):
    RESUBMIT = "re-submit"
    """Submit the kept document again under its original id."""
    REPARSE = "re-parse"
    """Parse the kept raw record again with today's parser and options."""
    PARK = "park"
    """Write it under `poison/` and report it: replaying cannot help (or attempts are used up)."""
    LEAVE = "leave"
    """Nothing to re-drive: the record only archives bytes whose document is indexed (it stays in its object)."""


@dataclass(frozen=True, slots=True)
class Plan:
    action: Action
    why: str = ""
    """For PARK: the reason, kept in the parked record as `parked`."""


def attempts_of(record: Mapping[str, Any]) -> int:
    """Replays of this record that already failed: top-level `attempts` (written by replay) or `origin.attempts`
    (carried through the sink and the pipeline, which write dead letters without knowing about replay)."""
    origin = record.get("origin")
    values: list[Any] = [record.get("attempts"), origin.get("attempts") if isinstance(origin, Mapping) else None]
    best = 0
    for value in values:
        if isinstance(value, int | str) and not isinstance(value, bool):
            try:
                best = max(best, int(value))
            except ValueError:
                continue
    return best


def plan_record(record: Mapping[str, Any], max_attempts: int) -> Plan:
    """What replay does with one dead-letter record; pure, so every rule is unit-tested."""
    attempts = attempts_of(record)
    if attempts >= max_attempts:
        return Plan(Action.PARK, f"failed {attempts} replay(s); max_attempts is {max_attempts}")
    origin = record.get("origin")
    if not isinstance(origin, Mapping) or not origin.get("source"):
        return Plan(Action.PARK, "the record has no origin")
    reason = str(record.get("reason") or "")
    if reason in ARCHIVE_REASONS:
        return Plan(Action.LEAVE)
    log_type = record.get("log_type")
    document = record.get("document")
    if (reason in RESUBMIT_REASONS and isinstance(document, dict) and isinstance(record.get("id"), str)
            and isinstance(log_type, str) and log_type):
        return Plan(Action.RESUBMIT)
    if reason not in REPARSE_REASONS:
        return Plan(Action.PARK, f"{reason or 'unknown'} records cannot be re-driven from the dead letter")
    raw = record.get("raw")
    detail = str(record.get("detail") or "")
    if not isinstance(raw, str) and not isinstance(document, dict):
        return Plan(Action.PARK, "neither the raw record nor the document was kept")
    if OVERSIZE_MARK in detail:
        return Plan(Action.PARK, "only the first bytes of the over-long line were kept")
    if detail.startswith(INVALID_JSON_MARK):
        return Plan(Action.PARK, "the record is not valid JSON")
    if not isinstance(log_type, str) or log_type not in log_types():
        return Plan(Action.PARK, f"unknown log type {log_type!r}")
    offset = record.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool):
        return Plan(Action.PARK, "no offset: the original id cannot be rebuilt")
    return Plan(Action.REPARSE)


def line_still_too_long(pointer: Mapping[str, Any], max_line_bytes: int) -> bool:
    """An `oversize_line` object whose line is still over `pipeline.max_line_bytes`: re-ingesting it would only
    dead-letter the head of the line and copy the object once more, so it fails again without being read."""
    if pointer.get("reason") != "oversize_line":
        return False
    found = _LINE_LENGTH.search(str(pointer.get("detail") or ""))
    return found is not None and int(found.group(1)) > max_line_bytes


_ORIGIN_FIELDS = ("source", "kind", "bucket", "key", "version")


def origin_of(data: Mapping[str, Any], attempts: int) -> Origin:
    """The record's origin as it was (same ids), carrying `attempts` so that a failure keeps the count."""
    extra = {k: str(v) for k, v in data.items() if k not in _ORIGIN_FIELDS and k != "attempts"}
    extra["attempts"] = str(attempts)
    source, kind, bucket, key, version = (str(data.get(k) or "") for k in _ORIGIN_FIELDS)
    return Origin(source, kind or "s3", bucket, key, version, 0, tuple(sorted(extra.items())))


def document_id(origin: Origin, offset: int, sub: str = "") -> str:
    """The id the pipeline gives the record at `offset` of `origin` (see `pipeline._Emitter`)."""
    prefix = origin.id_prefix() + "."
    return f"{prefix}{offset}.{sub}" if sub else prefix + str(offset)


def parse_pointer(body: str) -> dict[str, Any]:
    """A pointer message body -> its dict; ValueError when it is not one of ours."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict) or data.get("type") != POINTER_TYPE:
        raise ValueError(f"not a {POINTER_TYPE} pointer")
    if data.get("kind") not in ("records", "object") or not data.get("bucket") or not data.get("key"):
        raise ValueError("pointer without kind, bucket or key")
    return data


def decode_lines(lines: list[bytes], where: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The lines of a dead-letter object -> (records, lines that are not records, as records to park)."""
    records: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    for line in lines:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            rec = None
        if isinstance(rec, dict):
            records.append(rec)
        else:
            bad.append({"reason": "bad_record", "detail": f"a line of {where} is not a JSON object",
                        "raw": line[:1 << 20].decode("utf-8", "replace"), "parked": "not a dead-letter record"})
    return records, bad
