"""What a replay did, record by record: shared by the engine (which counts) and the command (which reports)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from worker import telemetry as m

METRIC_OUTCOMES = ("indexed", "exists", "failed_again", "poisoned", "dry_run")
"""Outcomes also counted by the `REPLAYED` metric."""


@dataclass(slots=True)
class ReplayCounts:
    """What a replay did, record by record (a whole object pointer counts as one record)."""

    pointers: int = 0
    """Dead-letter objects (or object pointers) handled."""
    records: int = 0
    """Records known so far: announced by pointers, or read from dead-letter objects."""
    indexed: int = 0
    exists: int = 0
    failed_again: int = 0
    poisoned: int = 0
    skipped: int = 0
    """Nothing to index: re-parsed into no document (the parser now says the line is not an event), an archive
    record (`invalid_utf8`), or an object the router skips on purpose."""
    errors: int = 0
    """Records or pointers not finished for an infrastructure reason; they stay for the next replay."""
    deferred: int = 0
    """Pointers left on the queue for later (too young, or sent while this replay ran)."""
    documents: int = 0
    """Documents submitted from re-ingested whole objects."""
    dry_run: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(reason, log type, action) -> records a dry run would re-drive."""
    missing: list[str] = field(default_factory=list)
    """Dead-letter objects named by a pointer that no longer exist."""
    poison_keys: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return (self.indexed + self.exists + self.failed_again + self.poisoned + self.skipped + self.errors
                + sum(self.dry_run.values()))

    def count(self, outcome: str, n: int = 1) -> None:
        if n <= 0:
            return
        setattr(self, outcome, getattr(self, outcome) + n)
        if outcome in METRIC_OUTCOMES:
            m.REPLAYED.labels(outcome).inc(n)

    def fail(self, what: str, n: int = 1) -> None:
        self.count("errors", n)
        if len(self.failures) < 100:
            self.failures.append(what)
