"""Streaming decompression and framing: compressed S3 bodies in, lines or JSON records out.

Everything here is synchronous and incremental, and does no I/O: the async pipeline reads a chunk (about
1 MiB) and hands it over, so these objects never see the whole object and memory stays bounded by the
chunk size and `max_output`, not by the object size. A 2 GB object or a zip bomb costs the same memory as
a 2 MB one. Work is done per chunk with C-level calls (split, find, decode, accumulate), never per byte.

Offsets are the contract with the rest of the worker: a line's offset is its byte position in the
decompressed stream, and document ids are built from it, so a redelivered object yields the same ids.
"""

from __future__ import annotations

import bz2
import json
import operator
import re
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import accumulate, repeat
from typing import Any, Literal, Protocol, cast

import orjson
import zstandard
from isal import isal_zlib

Compression = Literal["gzip", "zstd", "bzip2", "none"]

# isal's decompressobj has everything the gzip path needs (wbits=31 and 47, max_length, unconsumed_tail,
# eof, unused_data; checked against isal 1.9) and inflates about twice as fast as zlib, so no piece of the
# gzip path falls back to the stdlib. The module is looked up through this name at run time so that
# bench/decode_memory.py can swap in `zlib` for its comparison.
_ZLIB: Any = isal_zlib
# isal's stub declares `error` as an instance; it is the IsalError class.
_GZIP_ERRORS: tuple[type[Exception], ...] = (cast("type[Exception]", isal_zlib.error), zlib.error)

_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SNIFF_BYTES = 4

# Inputs are handed to a decompressor in slices of this size. zlib-style objects copy what is left of
# their input into `unconsumed_tail`/`unused_data` on every call; with Firehose-style objects made of
# hundreds of small gzip members per chunk, feeding the whole chunk would copy it once per member.
_SLICE = 64 << 10

# A zstd block never decompresses to more than this (RFC 8878, Block_Maximum_Size).
_ZSTD_BLOCK_MAX = 128 << 10

_NON_NUL = re.compile(rb"[^\x00]")
_JSON_WS = re.compile(r"[ \t\n\r]*")


class DecodeError(Exception):
    """The compressed input is corrupt or truncated; the object cannot be read past `offset`.

    It is the object's fault, not the infrastructure's: the caller dead-letters the object instead of
    retrying it. `offset` is the compressed byte position where the damage was noticed (-1 if unknown).
    """

    def __init__(self, message: str, offset: int = -1) -> None:
        super().__init__(message)
        self.offset = offset


class FramingError(Exception):
    """The decompressed data cannot be framed at all (a JSON object larger than its configured limit)."""


class _Codec(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    if len(data) <= size:
        if data:
            yield data
        return
    for i in range(0, len(data), size):
        yield data[i : i + size]


class _Passthrough:
    def __init__(self, max_output: int) -> None:
        self._max = max_output

    def feed(self, data: bytes) -> Iterator[bytes]:
        return _pieces(bytes(data), self._max)

    def finish(self) -> Iterator[bytes]:
        return iter(())


class _Members:
    """Concatenated members of a zlib-style format (gzip members, bzip2 streams).

    Multi-member files are normal (Firehose and CloudWatch Logs append a member per batch), so after a
    member's end the remaining bytes start the next one. NUL bytes between or after members are skipped,
    as gzip(1) does with tape padding; any other byte that does not start a member is corruption.
    """

    name = ""
    magic = b""

    def __init__(self, max_output: int) -> None:
        self._max = max_output
        self._member: Any = None
        self._member_start = 0
        self._pending = b""
        self._fed = 0
        self._first_slice = _SLICE
        self.members = 0

    def _open(self) -> Any:
        raise NotImplementedError

    def _inflate(self, piece: memoryview, at: int) -> Generator[bytes, None, int | None]:
        """Inflate one slice; return how many of its bytes follow the member's end, or None if it goes on."""
        raise NotImplementedError

    def feed(self, data: bytes) -> Iterator[bytes]:
        base = self._fed
        self._fed += len(data)
        if self._pending:
            # A partial magic from the previous chunk: rare, so the copy does not matter.
            base -= len(self._pending)
            data = self._pending + data
            self._pending = b""
        n = len(data)
        mv = memoryview(data)
        pos = 0
        while pos < n:
            if self._member is None:
                if data[pos] == 0:
                    m = _NON_NUL.search(data, pos)
                    if m is None:
                        return
                    pos = m.start()
                if n - pos < len(self.magic) and self.magic.startswith(data[pos:]):
                    self._pending = data[pos:]
                    return
                if not data.startswith(self.magic, pos):
                    raise DecodeError(
                        f"{self.name}: bytes at compressed offset {base + pos} are neither NUL padding nor the "
                        f"start of a {self.name} member (garbage after member {self.members})",
                        base + pos,
                    )
                self._member = self._open()
                self._member_start = base + pos
                piece = mv[pos : pos + self._first_slice]
            else:
                piece = mv[pos : pos + _SLICE]
            at = base + pos
            pos += len(piece)
            rest = yield from self._inflate(piece, at)
            if rest is not None:
                pos -= rest
                self._member = None
                self.members += 1
                # Members of one object tend to be alike: size the next member's first slice after this
                # one, so that small members do not pay for copying a 64 KiB tail into `unused_data`.
                size = base + pos - self._member_start
                self._first_slice = min(_SLICE, max(4096, size + size // 4))

    def finish(self) -> Iterator[bytes]:
        if self._member is not None:
            raise DecodeError(
                f"{self.name}: truncated: the member that starts at compressed offset {self._member_start} "
                f"is incomplete when the input ends at offset {self._fed}",
                self._fed,
            )
        if self._pending:
            at = self._fed - len(self._pending)
            raise DecodeError(
                f"{self.name}: truncated: {len(self._pending)} byte(s) at compressed offset {at} start a "
                f"member that never arrives",
                at,
            )
        return iter(())

    def _corrupt(self, at: int, size: int, exc: Exception) -> DecodeError:
        return DecodeError(
            f"{self.name}: corrupt data in the member that starts at compressed offset {self._member_start}, "
            f"detected in bytes {at}..{at + size}: {exc}",
            at,
        )


class _Gzip(_Members):
    name = "gzip"
    magic = _GZIP_MAGIC

    def _open(self) -> Any:
        # 31 = gzip wrapper only: the magic has been checked, so zlib-format auto-detection (47) is not
        # wanted; it would accept a zlib stream where a gzip member is required.
        return _ZLIB.decompressobj(wbits=31)

    def _inflate(self, piece: memoryview, at: int) -> Generator[bytes, None, int | None]:
        d = self._member
        limit = self._max
        data: Any = piece
        while True:
            try:
                out = d.decompress(data, limit)
            except _GZIP_ERRORS as exc:
                raise self._corrupt(at + len(piece) - len(data), len(data), exc) from exc
            if out:
                yield out
            if d.eof:
                return len(d.unused_data)
            data = d.unconsumed_tail
            # A full `out` may leave output inside the inflater even with all input taken (isal keeps
            # some), so only an output shorter than the limit proves the slice is done.
            if not data and len(out) < limit:
                return None


class _Bzip2(_Members):
    name = "bzip2"
    magic = _BZIP2_MAGIC

    def _open(self) -> Any:
        return bz2.BZ2Decompressor()

    def _inflate(self, piece: memoryview, at: int) -> Generator[bytes, None, int | None]:
        d = self._member
        limit = self._max
        data: Any = piece
        while True:
            try:
                out = d.decompress(data, limit)
            except (OSError, EOFError, ValueError) as exc:
                raise self._corrupt(at, len(piece), exc) from exc
            if out:
                yield out
            if d.eof:
                return len(d.unused_data)
            if d.needs_input:
                return None
            data = b""


# States of the zstd frame walker.
_Z_MAGIC, _Z_SKIP_SIZE, _Z_SKIP, _Z_FHD, _Z_FH_REST, _Z_BLOCK_HDR, _Z_BLOCK, _Z_CHECKSUM = range(8)


class _Zstd:
    """Zstandard frames, fed to the decompressor in slices whose output is known to be bounded.

    python-zstandard's decompressobj has no `max_length`: it returns everything a call's input inflates
    to, and zstd reaches ratios above 30000:1 (a 4-byte RLE block is 128 KiB). So this walks the frame
    format (RFC 8878: frame header, 3-byte block headers, checksum) with a cheap per-block step, and cuts
    the input wherever the blocks seen so far could produce `max_output` bytes. Knowing the frame
    boundaries also gives exact truncation errors and a fresh decompressor per frame (multi-frame files).
    """

    name = "zstd"

    def __init__(self, max_output: int) -> None:
        self._max = max_output
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj: Any = None
        self._state = _Z_MAGIC
        self._hdr = bytearray()
        self._need = 0
        self._checksum = False
        self._last = False
        self._block_max = 0
        self._frame_start = 0
        self._fed = 0
        self._consumed_to = 0
        self.members = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        base = self._fed
        self._fed += len(data)
        n = len(data)
        mv = memoryview(data)
        pos = 0
        cut = 0
        # A block whose content started in an earlier chunk may still produce all its output here.
        budget = self._block_max if self._dobj is not None else 0
        while pos < n:
            st = self._state
            if st == _Z_BLOCK:
                take = min(self._need, n - pos)
                pos += take
                self._need -= take
                if self._need == 0:
                    self._block_done()
            elif st == _Z_BLOCK_HDR:
                if not self._take(data, pos, 3):
                    pos = n
                    continue
                pos = self._consumed_to
                v = int.from_bytes(self._hdr, "little")
                self._hdr.clear()
                btype = (v >> 1) & 3
                size = v >> 3
                if btype == 3:
                    raise DecodeError(
                        f"zstd: reserved block type in the frame that starts at compressed offset "
                        f"{self._frame_start} (block header ends at offset {base + pos})",
                        base + pos,
                    )
                block_max = size if btype != 2 else _ZSTD_BLOCK_MAX
                if budget and budget + block_max > self._max:
                    yield from self._push(mv, cut, pos, base)
                    cut = pos
                    budget = 0
                budget += block_max
                self._block_max = block_max
                self._last = bool(v & 1)
                self._need = 1 if btype == 1 else size
                self._state = _Z_BLOCK
                if self._need == 0:
                    self._block_done()
            elif st == _Z_MAGIC:
                if not self._hdr and data[pos] == 0:
                    m = _NON_NUL.search(data, pos)
                    if m is None:
                        pos = n
                        continue
                    pos = m.start()
                if not self._take(data, pos, 4):
                    pos = n
                    continue
                pos = self._consumed_to
                magic = bytes(self._hdr)
                self._hdr.clear()
                start = base + pos - 4
                if magic == _ZSTD_MAGIC:
                    self._frame_start = start
                    self._dobj = self._dctx.decompressobj()
                    self._feed_dobj(_ZSTD_MAGIC, start)
                    self._state = _Z_FHD
                    cut = pos
                    budget = 0
                    self._block_max = 0
                elif magic[1:] == b"\x2a\x4d\x18" and magic[0] & 0xF0 == 0x50:
                    self._frame_start = start
                    self._state = _Z_SKIP_SIZE
                else:
                    raise DecodeError(
                        f"zstd: bytes at compressed offset {start} are neither NUL padding nor the start of "
                        f"a zstd frame (garbage after frame {self.members})",
                        start,
                    )
            elif st == _Z_FHD:
                fhd = data[pos]
                pos += 1
                if fhd & 0x08:
                    raise DecodeError(
                        f"zstd: reserved bit set in the header of the frame at compressed offset "
                        f"{self._frame_start}",
                        base + pos - 1,
                    )
                single = bool(fhd & 0x20)
                fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
                did = (0, 1, 2, 4)[fhd & 3]
                self._checksum = bool(fhd & 0x04)
                self._need = (0 if single else 1) + did + fcs
                self._state = _Z_FH_REST if self._need else _Z_BLOCK_HDR
            elif st in (_Z_FH_REST, _Z_CHECKSUM, _Z_SKIP):
                take = min(self._need, n - pos)
                pos += take
                self._need -= take
                if self._need == 0:
                    if st == _Z_FH_REST:
                        self._state = _Z_BLOCK_HDR
                    elif st == _Z_CHECKSUM:
                        yield from self._push(mv, cut, pos, base)
                        cut = pos
                        budget = 0
                        self._end_frame(base + pos)
                    else:
                        self._state = _Z_MAGIC
            else:  # _Z_SKIP_SIZE
                if not self._take(data, pos, 4):
                    pos = n
                    continue
                pos = self._consumed_to
                self._need = int.from_bytes(self._hdr, "little")
                self._hdr.clear()
                self._state = _Z_SKIP if self._need else _Z_MAGIC
            if self._state == _Z_MAGIC and self._dobj is not None:
                # The last block ended a frame without a checksum.
                yield from self._push(mv, cut, pos, base)
                cut = pos
                budget = 0
                self._end_frame(base + pos)
        if self._dobj is not None:
            yield from self._push(mv, cut, n, base)

    def _take(self, data: bytes, pos: int, size: int) -> bool:
        """Collect a fixed-size header that may straddle chunks; False if the chunk ended first."""
        want = size - len(self._hdr)
        got = data[pos : pos + want]
        self._hdr += got
        self._consumed_to = pos + len(got)
        return len(self._hdr) == size

    def _block_done(self) -> None:
        if not self._last:
            self._state = _Z_BLOCK_HDR
        elif self._checksum:
            self._state = _Z_CHECKSUM
            self._need = 4
        else:
            self._state = _Z_MAGIC

    def _end_frame(self, at: int) -> None:
        if not self._dobj.eof:
            raise DecodeError(
                f"zstd: the frame that starts at compressed offset {self._frame_start} did not end where "
                f"its last block says (offset {at})",
                at,
            )
        self._dobj = None
        self._block_max = 0
        self._state = _Z_MAGIC
        self.members += 1

    def _feed_dobj(self, chunk: Any, at: int) -> bytes:
        try:
            out: bytes = self._dobj.decompress(chunk)
        except zstandard.ZstdError as exc:
            raise DecodeError(
                f"zstd: corrupt data in the frame that starts at compressed offset {self._frame_start}, "
                f"detected in bytes {at}..{at + len(chunk)}: {exc}",
                at,
            ) from exc
        return out

    def _push(self, mv: memoryview, start: int, end: int, base: int) -> Iterator[bytes]:
        if end > start:
            yield from _pieces(self._feed_dobj(mv[start:end], base + start), self._max)

    def finish(self) -> Iterator[bytes]:
        if self._state != _Z_MAGIC:
            raise DecodeError(
                f"zstd: truncated: the frame that starts at compressed offset {self._frame_start} is "
                f"incomplete when the input ends at offset {self._fed}",
                self._fed,
            )
        if self._hdr:
            at = self._fed - len(self._hdr)
            raise DecodeError(
                f"zstd: truncated: {len(self._hdr)} byte(s) at compressed offset {at} are not a whole frame",
                at,
            )
        return iter(())


class StreamDecoder:
    """Decompresses an object chunk by chunk, whatever its size, in pieces of at most `max_output` bytes.

    The format comes from the magic bytes, never from the key: `.gz` objects that are plain text and
    un-suffixed gzip objects both exist in the wild. gzip, zstd and bzip2 may each be several members,
    frames or streams back to back. NUL padding after (or between) members is ignored, like gzip(1)
    does; other trailing bytes are a DecodeError, because silently dropping data is worse than
    dead-lettering an object.

    `feed()` and `finish()` return iterators that must be consumed before the next call: the pieces
    are produced lazily so that a zip bomb is never held in memory, and an abandoned iterator would
    lose data, so the next call refuses to run.
    """

    def __init__(self, max_output: int = 4 << 20) -> None:
        if max_output < 1:
            raise ValueError("max_output must be positive")
        self.max_output = max_output
        self.compression: Compression | None = None
        """Known once 4 bytes arrived (or at finish() for shorter inputs)."""
        self.compressed_bytes = 0
        self.decompressed_bytes = 0
        self._head = b""
        self._codec: _Codec | None = None
        self._busy = False
        self._finished = False
        self._failed: DecodeError | None = None

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._begin("feed")
        if type(chunk) is not bytes:
            chunk = bytes(chunk)  # bytearray/memoryview from a reader: the codecs want bytes methods
        self.compressed_bytes += len(chunk)
        return self._run(self._feed, chunk)

    def finish(self) -> Iterator[bytes]:
        """Flush the last pieces; raises DecodeError if the input ended inside a member or frame."""
        self._begin("finish")
        self._finished = True
        return self._run(self._finish, b"")

    @property
    def members(self) -> int:
        """Completed gzip members / zstd frames / bzip2 streams, for metrics and tests."""
        return int(getattr(self._codec, "members", 0))

    def _begin(self, what: str) -> None:
        if self._failed is not None:
            raise DecodeError(f"decoder already failed: {self._failed}", self._failed.offset)
        if self._busy:
            raise RuntimeError(f"{what}() called before the previous feed()/finish() iterator was exhausted")
        if self._finished:
            raise RuntimeError(f"{what}() called after finish()")
        self._busy = True

    def _run(self, step: Callable[[bytes], Iterator[bytes]], data: bytes) -> Iterator[bytes]:
        try:
            for piece in step(data):
                self.decompressed_bytes += len(piece)
                yield piece
        except DecodeError as exc:
            self._failed = exc
            raise
        self._busy = False

    def _feed(self, chunk: bytes) -> Iterator[bytes]:
        if self._codec is None:
            self._head += chunk
            if len(self._head) < _SNIFF_BYTES:
                return
            chunk, self._head = self._head, b""
            self._codec = self._sniff(chunk)
        yield from self._codec.feed(chunk)

    def _finish(self, _: bytes) -> Iterator[bytes]:
        if self._codec is None:
            head, self._head = self._head, b""
            self._codec = self._sniff(head)
            yield from self._codec.feed(head)
        yield from self._codec.finish()

    def _sniff(self, head: bytes) -> _Codec:
        codec: _Codec
        if head.startswith(_GZIP_MAGIC):
            self.compression, codec = "gzip", _Gzip(self.max_output)
        elif head.startswith(_ZSTD_MAGIC):
            self.compression, codec = "zstd", _Zstd(self.max_output)
        elif head.startswith(_BZIP2_MAGIC) and head[3:4].isdigit() and head[3:4] != b"0":
            self.compression, codec = "bzip2", _Bzip2(self.max_output)
        else:
            self.compression, codec = "none", _Passthrough(self.max_output)
        return codec


_ESCAPED_IN_TOKENS = bytes(range(0x00, 0x09)) + bytes(range(0x0E, 0x1C)) + b'"\\'
"""Bytes JSON must escape that can stand inside a whitespace-separated token: the quote, the backslash and
the control characters that are not whitespace (tab, newline, VT, FF, CR and 0x1C-0x1F separate tokens)."""


class LineFramer:
    """Cuts a decompressed stream into lines, each with the byte offset where it starts.

    Lines are decoded only once complete, so a UTF-8 character split across two pieces decodes right.
    The incomplete last line stays as bytes between calls, capped at `max_line_bytes`: a line longer
    than that (a binary object, a missing newline) is not emitted but reported in `oversize` as
    (offset, total length, decoded head), so the caller can dead-letter it with a reason instead of
    the framer growing without bound. Empty and whitespace-only lines are skipped; their bytes still
    count for the offsets of the lines after them.

    A line that is not valid UTF-8 is still emitted, decoded with U+FFFD in place of the bad bytes (the
    event stays searchable). With `report_invalid`, its original bytes are also reported in `invalid` as
    (offset, raw bytes): the emitted text is no longer the input, so the caller keeps the bytes (the worker
    writes them to the backup bucket) and nothing is lost. Off by default, so callers that never take them
    (`sluice parse`, benchmarks) do not accumulate them. Valid input pays nothing: ASCII chunks never look.
    """

    def __init__(self, max_line_bytes: int = 1 << 20, report_invalid: bool = False,
                 check_plain: bool = False) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self.max_line_bytes = max_line_bytes
        self.report_invalid = report_invalid
        self.check_plain = check_plain
        self.plain = False
        """With `check_plain`: whether no token (whitespace-free run) of the lines the last `feed` or `finish`
        returned holds a character JSON must escape, so a parser may format its JSON without escaping
        (`LogParser.parse_serialized`). One pass over each chunk's bytes (~0.7 ms per MB) instead of a check
        per line (~4 ms per MB)."""
        self._tail_plain = True
        self.lines = 0
        """Lines emitted so far."""
        self.bytes = 0
        """Decompressed bytes consumed so far (= the offset of the next byte)."""
        self.oversize: list[tuple[int, int, str]] = []
        self.invalid: list[tuple[int, bytes]] = []
        """(offset, original bytes) of emitted lines that were not valid UTF-8 (decoded with U+FFFD)."""
        self._tail = bytearray()
        self._tail_start = 0
        self._tail_len = 0
        self._discarding = False

    def take_oversize(self) -> list[tuple[int, int, str]]:
        out, self.oversize = self.oversize, []
        return out

    def take_invalid(self) -> list[tuple[int, bytes]]:
        out, self.invalid = self.invalid, []
        return out

    def feed(self, data: bytes) -> list[tuple[int, str]]:
        n = len(data)
        out: list[tuple[int, str]] = []
        if not n:
            return out
        base = self.bytes
        self.bytes += n
        start = 0
        plain = self.check_plain and len(data.translate(None, _ESCAPED_IN_TOKENS)) == n
        tail_plain = self._tail_plain or not self._tail_len  # the tail's bytes came with earlier chunks
        self.plain = plain and tail_plain
        if self._tail_len:
            nl = data.find(b"\n")
            if nl < 0:
                self._grow(memoryview(data))
                self._tail_plain = self.plain
                return out
            self._grow(memoryview(data)[:nl])
            self._close(out)
            start = nl + 1
        last = data.rfind(b"\n")
        if last >= start:
            if last > start:
                self._frame(data, start, last, base + start, out)
            start = last + 1
        if start < n:
            self._tail_start = base + start
            self._grow(memoryview(data)[start:])
            self._tail_plain = plain
        self.lines += len(out)
        return out

    def finish(self) -> list[tuple[int, str]]:
        """The last line, if the stream does not end with a newline."""
        out: list[tuple[int, str]] = []
        self.plain = self.check_plain and self._tail_plain
        if self._tail_len:
            self._close(out)
        self.lines += len(out)
        return out

    def _grow(self, piece: memoryview) -> None:
        self._tail_len += len(piece)
        if self._discarding:
            return
        room = self.max_line_bytes - len(self._tail)
        if len(piece) <= room:
            self._tail += piece
        else:
            self._tail += piece[:room]
            self._discarding = True

    def _close(self, out: list[tuple[int, str]]) -> None:
        if self._discarding:
            self.oversize.append((self._tail_start, self._tail_len, self._tail.decode("utf-8", "replace")))
        else:
            try:
                text = self._tail.decode("utf-8")
            except UnicodeDecodeError:
                text = self._tail.decode("utf-8", "replace")
                if self.report_invalid:
                    self.invalid.append((self._tail_start, bytes(self._tail)))
            if text and not text.isspace():
                out.append((self._tail_start, text[:-1] if text[-1] == "\r" else text))
        self._tail = bytearray()
        self._tail_len = 0
        self._discarding = False

    def _frame(self, data: bytes, a: int, b: int, base: int, out: list[tuple[int, str]]) -> None:
        """Emit the complete lines of data[a:b] (which starts at stream offset `base`, no final newline)."""
        parts: list[str]
        sizes: Iterable[int]
        lens: list[int] | None = None
        limit = self.max_line_bytes
        if data.isascii():
            # One decode and one split for the whole region, decoded straight from the buffer without
            # an intermediate copy; for ASCII, character counts are byte counts.
            parts = str(memoryview(data)[a:b], "ascii").split("\n")
            sizes = map(len, parts)
            too_long = b - a > limit and max(map(len, parts)) > limit
        else:
            raw = data[a:b].split(b"\n")
            sizes = lens = [len(p) for p in raw]
            if self.report_invalid:
                try:
                    parts = [p.decode("utf-8") for p in raw]
                except UnicodeDecodeError:
                    parts = self._decode_lossy(raw, base)
            else:
                parts = [p.decode("utf-8", "replace") for p in raw]
            too_long = b - a > limit and max(lens) > limit
        offsets = accumulate(map(operator.add, sizes, repeat(1)), initial=base)
        if too_long:
            self._frame_checked(parts, lens if lens is not None else list(map(len, parts)), offsets, out)
        elif b"\r" in data:
            out += [
                (o, p[:-1] if p[-1] == "\r" else p)
                for o, p in zip(offsets, parts, strict=False)
                if p and not p.isspace()
            ]
        else:
            out += [(o, p) for o, p in zip(offsets, parts, strict=False) if p and not p.isspace()]

    def _decode_lossy(self, raw: list[bytes], base: int) -> list[str]:
        """Decode lines some of which are not UTF-8: those get U+FFFD and are reported in `invalid`
        (except lines over the limit, which are reported as oversize instead)."""
        parts: list[str] = []
        at = base
        for p in raw:
            try:
                parts.append(p.decode("utf-8"))
            except UnicodeDecodeError:
                parts.append(p.decode("utf-8", "replace"))
                if len(p) <= self.max_line_bytes:
                    self.invalid.append((at, p))
            at += len(p) + 1
        return parts

    def _frame_checked(
        self, parts: list[str], sizes: list[int], offsets: Iterator[int], out: list[tuple[int, str]]
    ) -> None:
        limit = self.max_line_bytes
        for p, size, o in zip(parts, sizes, offsets, strict=False):
            if size > limit:
                # The head is cut by characters; for non-ASCII lines that can be a little over the
                # byte limit, which only affects the size of the report.
                self.oversize.append((o, size, p[:limit]))
            elif p and not p.isspace():
                out.append((o, p[:-1] if p[-1] == "\r" else p))


class JsonRecordsFramer:
    """Turns one JSON object file (CloudTrail, Config, Firehose JSON) into records.

    Such files are one document, not lines, so the whole object is kept (bounded by
    `max_document_bytes`) and parsed once at the end. Shapes understood, in order: {"Records": [...]},
    {"configurationItems": [...]}, a JSON array, any other object (one record); if the whole does not
    parse, NDJSON (one value per line), where a line may also hold several objects back to back, as
    Firehose writes them without a delimiter.

    Record indices: the position in the array for whole-document shapes (a lone object is 0); the byte
    offset where the value starts for NDJSON and concatenated objects. Errors use the same index space,
    so a dead letter points at the same place a record id would.
    """

    def __init__(self, max_document_bytes: int = 256 << 20) -> None:
        self.max_document_bytes = max_document_bytes
        self.bytes = 0
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self.bytes += len(data)
        if self.bytes > self.max_document_bytes:
            self._buf = bytearray()
            raise FramingError(
                f"JSON document larger than max_document_bytes ({self.max_document_bytes} bytes): "
                f"{self.bytes} bytes read so far"
            )
        self._buf += data

    def finish(self) -> tuple[list[tuple[int, Any]], list[tuple[int, str, str]]]:
        # orjson and the bytes methods below take the bytearray as it is: no copy of a large document.
        buf, self._buf = self._buf, bytearray()
        records: list[tuple[int, Any]] = []
        errors: list[tuple[int, str, str]] = []
        if not buf or buf.isspace():
            return records, errors
        try:
            doc = orjson.loads(buf)
        except orjson.JSONDecodeError:
            _ndjson(buf, records, errors)
            return records, errors
        items: list[Any]
        if isinstance(doc, dict):
            if isinstance(doc.get("Records"), list):
                items = doc["Records"]
            elif isinstance(doc.get("configurationItems"), list):
                items = doc["configurationItems"]
            else:
                return [(0, doc)], errors
        elif isinstance(doc, list):
            items = doc
        else:
            errors.append((0, buf.decode("utf-8", "replace"), f"a JSON {_kind(doc)}, not an object"))
            return records, errors
        for i, item in enumerate(items):
            if isinstance(item, dict):
                records.append((i, item))
            else:
                errors.append((i, orjson.dumps(item).decode(), f"record {i} is a JSON {_kind(item)}, not an object"))
        return records, errors


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _add(value: Any, at: int, raw: bytes | bytearray | str, records: list[tuple[int, Any]],
         errors: list[tuple[int, str, str]]) -> None:
    if isinstance(value, dict):
        records.append((at, value))
    else:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        errors.append((at, text, f"a JSON {_kind(value)}, not an object"))


def _ndjson(buf: bytes | bytearray, records: list[tuple[int, Any]], errors: list[tuple[int, str, str]]) -> None:
    pos = 0
    for line in buf.split(b"\n"):
        at = pos
        pos += len(line) + 1
        body = line.lstrip()
        if not body or body.isspace():
            continue
        at += len(line) - len(body)
        body = body.rstrip()
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if not _concatenated(body, at, records, errors):
                errors.append((at, body.decode("utf-8", "replace"), str(exc)))
            continue
        _add(value, at, body, records, errors)


def _concatenated(body: bytes | bytearray, at: int, records: list[tuple[int, Any]],
                  errors: list[tuple[int, str, str]]) -> bool:
    """Objects written back to back (`{...}{...}`); False if `body` does not even start with one value.

    Fast path: split at every `}{` and parse the pieces with orjson. A `}{` inside a string makes the
    piece before it end inside that string, which cannot parse, so a split that parses is the right
    one; if any piece fails, the stdlib's raw_decode walks the line value by value instead.
    """
    if b"}{" in body:
        parts = body.split(b"}{")
        pieces = [parts[0] + b"}", *[b"{" + p + b"}" for p in parts[1:-1]], b"{" + parts[-1]]
        try:
            values = [orjson.loads(p) for p in pieces]
        except orjson.JSONDecodeError:
            pass
        else:
            for piece, value in zip(pieces, values, strict=True):
                _add(value, at, piece, records, errors)
                at += len(piece)
            return True
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    ascii_only = body.isascii()
    decoder = json.JSONDecoder()
    i = 0
    byte_at = at
    found = False
    n = len(text)
    while i < n:
        j = _JSON_WS.match(text, i).end()  # type: ignore[union-attr]
        if j >= n:
            break
        byte_at += (j - i) if ascii_only else len(text[i:j].encode())
        i = j
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            if not found:
                return False
            errors.append((byte_at, text[i:], f"invalid JSON after {len(records)} record(s): {exc.msg}"))
            return True
        found = True
        _add(value, byte_at, "" if isinstance(value, dict) else text[i:end], records, errors)
        byte_at += (end - i) if ascii_only else len(text[i:end].encode())
        i = end
    return found


__all__ = ["Compression", "DecodeError", "FramingError", "JsonRecordsFramer", "LineFramer", "StreamDecoder"]
