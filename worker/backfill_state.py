"""The resumable part of `sluice backfill`: an append-only file of the objects already finished.

An object is written here only after every document from it was indexed or durably dead-lettered, so
whatever the file lists is done, and whatever it does not list is (re)ingested by the next run; deterministic
ids make a re-ingested object cost 409 conflicts, not duplicates. Each line carries the object's version tag
(version id, else ETag), so an object rewritten since it was finished is ingested again under its new ids.

Format: JSON lines. The first line names the bucket (a state file cannot be reused for another bucket by
mistake); every other line is `{"key": ..., "version": ...}`; for a key listed twice the last line wins. Lines
are written in batches and fsync'd: a crash loses at most the last batch, whose objects are then ingested
again (as 409s). A line torn by a crash is ignored on load.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import orjson

FORMAT_VERSION = 1
SYNC_EVERY = 1.0
"""Seconds between two fsyncs of finished objects (a batch also goes out once it reaches SYNC_BATCH)."""
SYNC_BATCH = 512


class StateFileError(Exception):
    """The state file cannot be used for this backfill (another bucket, unreadable)."""


def default_state_path(bucket: str, prefix: str) -> Path:
    """`.sluice-backfill-<bucket>-<hash of prefix>.state` in the working directory: one file per prefix."""
    digest = hashlib.blake2b(prefix.encode(), digest_size=4).hexdigest()
    return Path(f".sluice-backfill-{bucket}-{digest}.state")


class BackfillState:
    """`load()` the finished objects, `record()` newly finished ones, `close()` to sync what is buffered."""

    def __init__(self, path: Path, bucket: str, prefix: str) -> None:
        self.path = path
        self.bucket = bucket
        self.prefix = prefix
        self.done: dict[str, str] = {}
        """Finished key -> its version tag when it was finished."""
        self.torn_lines = 0
        self._fd: int | None = None
        self._pending: list[bytes] = []
        self._lock = asyncio.Lock()
        self._last_sync = time.monotonic()
        self._syncs = 0

    def load(self) -> dict[str, str]:
        """Read what earlier runs finished; raises StateFileError if the file belongs to another bucket."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self.done
        except OSError as exc:
            raise StateFileError(f"{self.path}: {exc.strerror}") from None
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.torn_lines += 1
                continue
            if not isinstance(rec, dict):
                self.torn_lines += 1
                continue
            if "sluice_backfill" in rec:
                if rec.get("bucket") != self.bucket:
                    raise StateFileError(
                        f"{self.path} records a backfill of bucket {rec.get('bucket')!r}, not {self.bucket!r}; "
                        "pass another --state file")
                continue
            if not isinstance(rec.get("key"), str):
                self.torn_lines += 1
                continue
            self.done[rec["key"]] = str(rec.get("version", ""))
        return self.done

    def is_done(self, key: str, version_tag: str) -> bool:
        """True when this very version of the object was finished by an earlier run (or this one)."""
        return self.done.get(key) == version_tag

    def open(self) -> None:
        """Open for appending (done by the first sync if not before): a new file gets its header, a torn last
        line gets a newline after it. A run that finishes nothing (a mistyped bucket) leaves no file behind."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        head = b""
        if size == 0:
            head = orjson.dumps({"sluice_backfill": FORMAT_VERSION, "bucket": self.bucket, "prefix": self.prefix,
                                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + b"\n"
        else:
            with self.path.open("rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    head = b"\n"
        if head:
            os.write(fd, head)
            os.fsync(fd)
        self._fd = fd

    async def record(self, key: str, version_tag: str) -> None:
        """Remember a finished object; synced to disk within SYNC_EVERY seconds or SYNC_BATCH objects."""
        self.done[key] = version_tag
        self._pending.append(orjson.dumps({"key": key, "version": version_tag}) + b"\n")
        if len(self._pending) >= SYNC_BATCH:
            await self.sync()
        else:
            await self.sync_due()

    async def sync_due(self) -> None:
        """Sync if records have waited SYNC_EVERY seconds (called on a timer too, so the last ones go out)."""
        if self._pending and time.monotonic() - self._last_sync >= SYNC_EVERY:
            await self.sync()

    async def sync(self) -> None:
        """Write and fsync the buffered records (in a thread: an fsync can take a while on a busy disk)."""
        async with self._lock:
            if not self._pending:
                return
            if self._fd is None:
                self.open()
            lines, self._pending = self._pending, []
            await asyncio.to_thread(self._write, b"".join(lines))
            self._last_sync = time.monotonic()
            self._syncs += 1

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    async def close(self) -> None:
        await self.sync()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def syncs(self) -> int:
        """Batches written so far (for the summary and tests)."""
        return self._syncs
