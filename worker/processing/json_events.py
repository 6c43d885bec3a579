"""JSON content split into events, and events holding a list expanded into one event per item.

Offsets are UTF-8 byte offsets into the text, because document ids are made from them and must be the same
however the text was chunked or decoded: a JSON document's offset is where its first byte (`{`, `[`, ...) is;
a line's offset is where the line starts (as `LineFramer` counts it).

A document larger than `max_bytes` (UTF-8 bytes of its JSON text) is a failure with its whole text, so it goes
to the dead letters rather than to a bulk request the cluster would refuse; the same holds for lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

import orjson

Events = list[tuple[int, Any]]
Failures = list[tuple[int, str, str]]

JSON_MODES = ("ndjson", "single", "auto")

_WS = re.compile(r"[ \t\r\n]*")
_NEXT_DOCUMENT = re.compile(r"\n[{\[]")
"""Where decoding resumes after invalid JSON in `auto`: an object or array opening at the start of a line
(pretty-printed documents indent what is inside them; NDJSON starts every line with one)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""The stdlib decoder, for what orjson cannot do: `raw_decode` (one value of several) and integers beyond
64 bits. NaN / Infinity are refused, as orjson refuses them, so both paths accept the same documents."""


def _loads(data: bytes | str) -> Any:
    """Decode one JSON document: orjson, and the stdlib only when orjson refuses (a 65-bit integer is valid
    JSON); the error raised is orjson's, which says what is wrong more plainly."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            return _DECODER.decode(data if isinstance(data, str) else data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise exc from None


def _too_big(size: int, max_bytes: int) -> str:
    return f"JSON document of {size} bytes exceeds max_bytes ({max_bytes})"


def split_json(text: str, mode: str, max_bytes: int) -> tuple[Events, Failures]:
    """Events `(offset, decoded value)` and failures `(offset, raw text, reason)` of `text`.

    `ndjson`: one document per non-blank line; a bad line is a failure, the others are events.
    `single`: the whole text is one document.
    `auto`: one or more documents back to back (concatenated, NDJSON, pretty-printed, or a mix); a part that
    is not valid JSON is a failure up to the next line starting with `{` or `[`, where decoding resumes. Text
    that does not start with `{` or `[` is not JSON at all: each non-blank line is an event (a string).
    Values are returned as decoded: objects, but also arrays and scalars.
    """
    events, failures, _ = split_json_ex(text, mode, max_bytes)
    return events, failures


def split_json_ex(text: str, mode: str, max_bytes: int) -> tuple[Events, Failures, bool]:
    """`split_json`, plus whether `auto` found no JSON and returned the text's lines (then multiline applies)."""
    events: Events = []
    failures: Failures = []
    if mode == "ndjson":
        _ndjson(text, max_bytes, events, failures)
    elif mode == "single":
        _single(text, max_bytes, events, failures)
    elif mode == "auto":
        return _auto(text, max_bytes, events, failures)
    else:
        raise ValueError(f"unknown JSON content type {mode!r}; one of {', '.join(JSON_MODES)}")
    return events, failures, False


def _ndjson(text: str, max_bytes: int, events: Events, failures: Failures) -> None:
    data = text.encode()
    pos = 0
    for line in data.split(b"\n"):
        at = pos
        pos += len(line) + 1
        body = line.strip(b" \t\r")
        if not body:
            continue
        at += len(line) - len(line.lstrip(b" \t\r"))
        if len(body) > max_bytes:
            failures.append((at, body.decode("utf-8", "replace"), _too_big(len(body), max_bytes)))
            continue
        try:
            value = _loads(body)
        except orjson.JSONDecodeError as exc:
            failures.append((at, body.decode("utf-8", "replace"), f"invalid JSON: {exc}"))
            continue
        events.append((at, value))


def _single(text: str, max_bytes: int, events: Events, failures: Failures) -> None:
    start = _WS.match(text).end()  # type: ignore[union-attr]  # the pattern matches the empty string
    body = text[start:].rstrip(" \t\r\n")
    if not body:
        return
    data = body.encode()
    if len(data) > max_bytes:
        failures.append((start, body, _too_big(len(data), max_bytes)))
        return
    try:
        events.append((start, _loads(data)))
    except orjson.JSONDecodeError as exc:
        failures.append((start, body, f"invalid JSON: {exc}"))


def _lines(text: str, max_bytes: int, events: Events, failures: Failures) -> None:
    """Non-JSON content: each non-blank line an event, as `LineFramer` frames it (offset of the line's start,
    a trailing CR removed)."""
    ascii_only = text.isascii()
    pos = 0
    for line in text.split("\n"):
        at = pos
        size = len(line) if ascii_only else len(line.encode())
        pos += size + 1
        if not line or line.isspace():
            continue
        if line[-1] == "\r":
            line = line[:-1]
        if size > max_bytes:
            failures.append((at, line, f"line of {size} bytes exceeds max_bytes ({max_bytes})"))
        else:
            events.append((at, line))


def _auto(text: str, max_bytes: int, events: Events, failures: Failures) -> tuple[Events, Failures, bool]:
    start = _WS.match(text).end()  # type: ignore[union-attr]
    if start == len(text):
        return events, failures, False
    if text[start] not in "{[":
        _lines(text, max_bytes, events, failures)
        return events, failures, True
    data = text.encode()
    # Fast paths, all orjson: one document (maybe pretty-printed), then NDJSON where every line parses.
    if len(data) - start <= max_bytes:
        try:
            events.append((start, orjson.loads(data)))
            return events, failures, False
        except orjson.JSONDecodeError:
            pass
    if "\n" in text[start:].rstrip(" \t\r\n"):
        probe = _strict_ndjson(data, max_bytes)
        if probe is not None:
            events.extend(probe)
            return events, failures, False
    _walk(text, start, max_bytes, events, failures)
    return events, failures, False


def _strict_ndjson(data: bytes, max_bytes: int) -> Events | None:
    """The documents of `data` if every non-blank line is exactly one JSON document (or too big to try);
    None as soon as one is not, so the caller walks the text value by value instead."""
    out: Events = []
    pos = 0
    loads = orjson.loads
    for line in data.split(b"\n"):
        at = pos
        pos += len(line) + 1
        body = line.strip(b" \t\r")
        if not body:
            continue
        if len(body) > max_bytes:
            return None
        try:
            value = loads(body)
        except orjson.JSONDecodeError:
            return None
        out.append((at + len(line) - len(line.lstrip(b" \t\r")), value))
    return out


def _walk(text: str, i: int, max_bytes: int, events: Events, failures: Failures) -> None:
    """Decode `text` from `i` value by value (concatenated and pretty-printed documents), tracking byte offsets
    (character offsets differ from them as soon as the text is not ASCII)."""
    nbytes: Callable[[str], int] = len if text.isascii() else (lambda s: len(s.encode()))
    raw_decode = _DECODER.raw_decode
    ws = _WS.match
    n = len(text)
    at = i  # JSON whitespace is ASCII: the leading run has as many bytes as characters
    while i < n:
        try:
            value, end = raw_decode(text, i)
        except ValueError as exc:
            m = _NEXT_DOCUMENT.search(text, i + 1)
            end = m.start() + 1 if m is not None else n
            piece = text[i:end]
            body = piece.rstrip(" \t\r\n")
            if isinstance(exc, json.JSONDecodeError):
                reason = f"{exc.msg} at character {exc.pos - i} of the document"
            else:
                reason = str(exc)
            failures.append((at, body, f"invalid JSON: {reason}"))
            at += nbytes(piece)
        else:
            piece = text[i:end]
            size = nbytes(piece)
            if size > max_bytes:
                failures.append((at, piece, _too_big(size, max_bytes)))
            else:
                events.append((at, value))
            at += size
        i = end
        j = ws(text, i).end()  # type: ignore[union-attr]
        at += j - i
        i = j


def _lookup(event: dict[str, Any], field: str) -> tuple[str, Any] | None:
    """(top-level key, value) of `field` in `event`: a key spelled exactly so first, else a dotted path."""
    if field in event:
        return field, event[field]
    if "." not in field:
        return None
    head, *rest = field.split(".")
    value: Any = event.get(head)
    for part in rest:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return head, value


def expand_event_list(event: Any, field: str, root_fields: Literal["all"] | list[str]) -> list[Any] | None:
    """One event per item of the list `event[field]` (`field` may be a dotted path, e.g. `detail.items`);
    None when `event` is not an object holding a list there (the caller keeps it whole).

    An object item gets the chosen root fields of `event` (`all`: every key but the one holding `field`; or
    the named ones that are present) added where it has no key of that name: the item's own values win. The
    root values are shared between the items, not copied; other items are returned as they are. The input is
    never modified. An empty list gives `[]`.
    """
    if not isinstance(event, dict):
        return None
    found = _lookup(event, field)
    if found is None or not isinstance(found[1], list):
        return None
    top, items = found
    if root_fields == "all":
        roots = {k: v for k, v in event.items() if k != top}
    else:
        roots = {k: event[k] for k in root_fields if k != top and k in event}
    if not roots:
        return [dict(item) if isinstance(item, dict) else item for item in items]
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            merged = dict(item)
            for key, value in roots.items():
                if key not in merged:
                    merged[key] = value
            out.append(merged)
        else:
            out.append(item)
    return out
