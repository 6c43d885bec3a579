"""What `sluice replay` is asked to do: its options, checked, and the dead-letter objects they select."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from worker.config import Config, ReplaySource


class ReplayUsageError(ValueError):
    """The command line cannot work: exit 2 with this message."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    from_bucket: bool = False
    prefix: str = ""
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = False
    rate: float = 0.0
    max_attempts: int = 3


def parse_time(value: str | None, what: str) -> datetime | None:
    """ISO 8601 (`2026-11-22`, `2026-11-22T10:00:00Z`, with an offset or without: UTC) -> aware datetime."""
    if value is None or value == "":
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ReplayUsageError(f"{what} {value!r}: not an ISO 8601 date or time") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def options_from_args(args: argparse.Namespace) -> ReplayOptions:
    since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
    if not args.from_bucket and (args.prefix or since or until):
        raise ReplayUsageError("--prefix, --since and --until select objects in the bucket: add --from-bucket")
    if since and until and since >= until:
        raise ReplayUsageError(f"--since {args.since} is not before --until {args.until}")
    if args.rate < 0:
        raise ReplayUsageError("--rate must be 0 (unlimited) or more")
    if args.max_attempts < 1:
        raise ReplayUsageError("--max-attempts must be at least 1")
    return ReplayOptions(bool(args.from_bucket), args.prefix or "", since, until, bool(args.dry_run),
                         float(args.rate), int(args.max_attempts))


def replay_source_config(cfg: Config) -> ReplaySource:
    """The first `type: replay` source of the config, else the defaults."""
    for scfg in cfg.sources.values():
        if isinstance(scfg, ReplaySource):
            return scfg
    return ReplaySource(type="replay")


def dead_letter_keys(entries: Iterable[tuple[str, datetime]], base: str, prefix: str,
                     since: datetime | None, until: datetime | None) -> list[str]:
    """Keys of NDJSON.gz dead-letter objects to replay from a listing of (key, LastModified), oldest first.

    Whole objects kept under `objects/` are not record files; `poison/` is where replay parks what it gave
    up on, so it is only read when asked for explicitly (`--prefix poison/...`).
    """
    skip = [f"{base}objects/"]
    if not prefix.startswith("poison/"):
        skip.append(f"{base}poison/")
    chosen = [(modified, key) for key, modified in entries
              if key.startswith(base + prefix) and key.endswith(".ndjson.gz")
              and not any(key.startswith(s) for s in skip)
              and (since is None or modified >= since) and (until is None or modified < until)]
    return [key for _, key in sorted(chosen)]
