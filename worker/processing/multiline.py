"""Joining lines into events (a Java stack trace, a slow-query entry), streaming over a unit's line frames.

The semantics are Filebeat's, so configurations written for Filebeat or Elastic Serverless Forwarder keep
their meaning. A line "is a continuation" when `pattern` is found in it (`re.search`), or is not found with
`negate`:

- `pattern`, `match: after`: a continuation line is appended to the event before it; any other line starts
  a new event. The last event stays pending until a line that is not a continuation (or the end) arrives.
- `pattern`, `match: before`: a continuation line is held and joined to the lines after it; the event ends
  at (and includes) the first line that is not a continuation (a trailing `\\` continues a line).
- `count`: every `count_lines` lines are one event.
- `while_pattern`: consecutive matching lines are one event; any other line is an event on its own.

An event holds at most `max_lines` lines and `max_bytes` bytes (UTF-8, newlines included): a line that would
take it past either starts a new event instead, and the split is counted in `splits`. A single line longer
than `max_bytes` is still one event of its own: no line is ever dropped or cut.

Each event carries the offset of its first line: line offsets are unique in a unit, and so are first lines.
"""

from __future__ import annotations

import re

from worker.config import MultilineConfig

Frame = tuple[int, str]


def _size(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode())


class Multiline:
    """The pending event of one stream; one instance per unit (or per stream whose lines trickle in)."""

    __slots__ = ("_before", "_bytes", "_count_lines", "_group", "_lines", "_max_bytes", "_max_lines", "_negate",
                 "_offset", "_search", "_type", "pending_since", "splits", "timeout")

    def __init__(self, cfg: MultilineConfig) -> None:
        self._type = cfg.type
        self._before = cfg.type == "pattern" and cfg.match == "before"
        self._search = re.compile(cfg.pattern).search if cfg.pattern else None
        self._negate = cfg.negate
        self._count_lines = cfg.count_lines or 1
        self._max_lines = cfg.max_lines
        self._max_bytes = cfg.max_bytes
        self.timeout = cfg.timeout
        self.splits = 0
        """Events cut by `max_lines` / `max_bytes` (each split makes one more event; no line is lost)."""
        self.pending_since: float | None = None
        """Monotonic time (the caller's `now`) the pending event last got a line; None when nothing is pending."""
        self._offset = 0
        self._lines: list[str] = []
        self._bytes = 0
        self._group = 0

    @property
    def pending(self) -> bool:
        return bool(self._lines)

    def feed(self, frames: list[Frame], now: float) -> list[Frame]:
        """The events `frames` complete, in order; the last (possibly incomplete) event stays pending."""
        out: list[Frame] = []
        if not frames:
            return out
        if self._type == "count":
            self._feed_count(frames, out)
        elif self._type == "while_pattern":
            self._feed_while(frames, out)
        elif self._before:
            self._feed_before(frames, out)
        else:
            self._feed_after(frames, out)
        # A non-empty feed either added its last line to the pending event or left nothing pending.
        self.pending_since = now if self._lines else None
        return out

    def flush(self) -> list[Frame]:
        """The pending event (end of a unit, or its timeout): whatever is held is emitted, never dropped."""
        out: list[Frame] = []
        if self._lines:
            self._emit(out)
        self._group = 0
        self.pending_since = None
        return out

    def expired(self, now: float) -> bool:
        """Whether the pending event has waited `timeout` seconds for a line: the caller then `flush`es it."""
        since = self.pending_since
        return since is not None and now - since >= self.timeout

    def _continues(self, line: str) -> bool:
        search = self._search
        assert search is not None
        return (search(line) is not None) is not self._negate

    def _fits(self, size: int) -> bool:
        return len(self._lines) < self._max_lines and self._bytes + 1 + size <= self._max_bytes

    def _start(self, offset: int, line: str, size: int) -> None:
        self._offset = offset
        self._lines = [line]
        self._bytes = size

    def _append(self, line: str, size: int) -> None:
        self._lines.append(line)
        self._bytes += 1 + size

    def _join(self, offset: int, line: str, out: list[Frame]) -> None:
        """Add a line to the pending event (or start one); an event at max_lines / max_bytes is emitted first,
        and the line starts the next one (counted as a split: nothing is dropped)."""
        size = _size(line)
        if not self._lines:
            self._start(offset, line, size)
        elif self._fits(size):
            self._append(line, size)
        else:
            self.splits += 1
            self._emit(out)
            self._start(offset, line, size)

    def _emit(self, out: list[Frame]) -> None:
        lines = self._lines
        out.append((self._offset, lines[0] if len(lines) == 1 else "\n".join(lines)))
        self._lines = []
        self._bytes = 0

    def _feed_after(self, frames: list[Frame], out: list[Frame]) -> None:
        continues = self._continues
        for offset, line in frames:
            if self._lines and not continues(line):
                self._emit(out)
            self._join(offset, line, out)

    def _feed_before(self, frames: list[Frame], out: list[Frame]) -> None:
        continues = self._continues
        for offset, line in frames:
            self._join(offset, line, out)
            if not continues(line):
                self._emit(out)

    def _feed_count(self, frames: list[Frame], out: list[Frame]) -> None:
        # `_group` counts the lines of the current group of `count_lines`, including any part of it already
        # emitted by a max_lines / max_bytes split, so a split does not shift the groups after it.
        per_event = self._count_lines
        for offset, line in frames:
            self._join(offset, line, out)
            self._group += 1
            if self._group >= per_event:
                self._emit(out)
                self._group = 0

    def _feed_while(self, frames: list[Frame], out: list[Frame]) -> None:
        continues = self._continues
        for offset, line in frames:
            if continues(line):
                self._join(offset, line, out)
            else:
                if self._lines:
                    self._emit(out)
                out.append((offset, line))
