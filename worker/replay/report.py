"""How a `sluice replay` run is shown: a progress line on stderr while it runs, a summary and an exit code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from worker.command import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from worker.progress import duration
from worker.replay.counts import ReplayCounts


@dataclass(slots=True)
class ReplayReport:
    """One run: its counts (shared with the engine), where it read from, and how it ended."""

    where: str
    dry_run: bool = False
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    objects_listed: int | None = None
    """--from-bucket: dead-letter objects selected (None: reading the queue)."""
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def elapsed(self) -> float:
        return max(1e-6, (self.ended or time.monotonic()) - self.started)

    @property
    def exit_code(self) -> int:
        c = self.counts
        if self.interrupted:
            return EXIT_INTERRUPTED
        if c.errors or c.missing or c.failed_again:
            return EXIT_FAILED
        return EXIT_OK

    def progress_line(self) -> str:
        c = self.counts
        objects = f"{c.pointers}/{self.objects_listed}" if self.objects_listed is not None else f"{c.pointers}"
        line = (f"replay {self.where}: {c.done}/{c.records} records, {objects} objects, "
                f"{c.done / self.elapsed:,.1f} records/s")
        if self.dry_run:
            return line + " (dry run)"
        return (f"{line}; re-indexed {c.indexed}, already there {c.exists}, failed again {c.failed_again}, "
                f"poisoned {c.poisoned}, errors {c.errors}")

    def summary(self) -> str:
        c = self.counts
        state = ("interrupted" if self.interrupted else "finished with failures" if self.exit_code else "complete")
        head = (f"replay {self.where} {state} in {duration(self.elapsed)}: {c.records} records in {c.pointers} "
                f"dead-letter objects")
        if self.dry_run:
            lines = [f"{head} (dry run: nothing was changed)"]
            width = max((len(r) for r, _, _ in c.dry_run), default=6)
            for (reason, log_type, action), n in sorted(c.dry_run.items()):
                lines.append(f"  would {action:<9} {reason:<{width}} {log_type or '-':<20} {n}")
        else:
            lines = [head, f"  re-indexed {c.indexed}, already there {c.exists}, failed again {c.failed_again} "
                           f"(back in the dead letters with their attempt count), poisoned {c.poisoned}, "
                           f"no document {c.skipped}, errors {c.errors}"]
            if c.documents:
                lines.append(f"  {c.documents:,} documents from whole objects re-ingested")
        if c.poison_keys:
            shown = ", ".join(c.poison_keys[:10]) + (f" and {len(c.poison_keys) - 10} more"
                                                     if len(c.poison_keys) > 10 else "")
            lines.append(f"  parked under poison/ ({len(c.poison_keys)} objects): {shown}")
        if c.deferred:
            lines.append(f"  {c.deferred} pointer(s) sent during this run were left for the next replay")
        lines += [f"  missing (pointer names an object that is gone): {where}" for where in c.missing[:10]]
        lines += [f"  failed: {what}" for what in c.failures[:10]]
        if len(c.failures) > 10:
            lines.append(f"  ... and {len(c.failures) - 10} more (see the log)")
        return "\n".join(lines)
