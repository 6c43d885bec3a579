"""Progress and durations for long-running commands (`sluice backfill`, `sluice replay`), written once."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, TextIO


class Reports(Protocol):
    def progress_line(self) -> str: ...

    def summary(self) -> str: ...


def duration(seconds: float) -> str:
    """`4m07s` / `1h02m03s`: how long a run took or has left."""
    s = int(seconds + 0.5)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class ProgressPrinter:
    """A progress line on stderr: rewritten in place on a terminal, one line every few seconds otherwise."""

    def __init__(self, report: Reports, out: TextIO | None) -> None:
        self.report = report
        self.out = out
        self.tty = bool(out is not None and out.isatty())
        self.interval = 0.5 if self.tty else 5.0
        self._last = time.monotonic()  # the first line after one interval: a short run prints just its summary

    def tick(self) -> None:
        if self.out is None or time.monotonic() - self._last < self.interval:
            return
        self._last = time.monotonic()
        line = self.report.progress_line()
        self.out.write(f"\r{line}\x1b[K" if self.tty else line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.out is None:
            return
        if self.tty:
            self.out.write("\r\x1b[K")
        self.out.write(self.report.summary() + "\n")
        self.out.flush()

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.tick()
