"""Streaming decompression and framing: exact output at any chunking, bounded pieces, clear failures."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from isal import isal_zlib

from worker.decoding import DecodeError, FramingError, JsonRecordsFramer, LineFramer, StreamDecoder


def _corpus() -> Path:
    env = os.environ.get("SLUICE_CORPUS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "corpus"


CORPUS = _corpus()
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


def _payload(seed: int = 7, lines: int = 3000) -> bytes:
    """Text with varied line lengths, then zeros (RLE blocks in zstd) and noise (stored/raw blocks)."""
    rnd = random.Random(seed)
    text = b"".join(
        b"%d %s \xc3\xa9\n" % (i, rnd.randbytes(rnd.randint(0, 40)).hex().encode()) for i in range(lines)
    )
    return text + bytes(150_000) + rnd.randbytes(70_000) + b"tail without newline"


def _gzip_members(*parts: bytes) -> bytes:
    return b"".join(gzip.compress(p) for p in parts)


def _zstd_frames(*parts: bytes) -> bytes:
    settings: list[dict[str, Any]] = [
        {"write_checksum": True},
        {"write_content_size": False},
        {"level": 19, "write_checksum": False},
    ]
    return b"".join(
        zstandard.ZstdCompressor(**settings[i % len(settings)]).compress(p) for i, p in enumerate(parts)
    )


def _bzip2_streams(*parts: bytes) -> bytes:
    return b"".join(bz2.compress(p, 1) for p in parts)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _decode(chunks: Iterable[bytes], max_output: int = 4 << 20) -> tuple[bytes, StreamDecoder]:
    decoder = StreamDecoder(max_output)
    out: list[bytes] = []
    for chunk in chunks:
        for piece in decoder.feed(chunk):
            assert 0 < len(piece) <= max_output
            out.append(piece)
    for piece in decoder.finish():
        assert 0 < len(piece) <= max_output
        out.append(piece)
    return b"".join(out), decoder


def _encoded(kind: str, *parts: bytes) -> bytes:
    return {"gzip": _gzip_members, "zstd": _zstd_frames, "bzip2": _bzip2_streams}[kind](*parts)


# -- StreamDecoder: formats ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2"])
@pytest.mark.parametrize("chunk", [1 << 20, 65536, 4099, 257])
@pytest.mark.parametrize("max_output", [4 << 20, 65536, 1000])
def test_multi_member_roundtrip(kind: str, chunk: int, max_output: int) -> None:
    raw = _payload()
    parts = (raw[:30_000], b"", raw[30_000:200_000], raw[200_000:])
    out, decoder = _decode(_chunks(_encoded(kind, *parts), chunk), max_output)
    assert out == raw
    assert decoder.compression == kind
    assert decoder.members == len(parts)
    assert decoder.decompressed_bytes == len(raw)


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2"])
def test_single_member(kind: str) -> None:
    raw = _payload(lines=500)
    out, decoder = _decode([_encoded(kind, raw)])
    assert out == raw
    assert decoder.members == 1


def test_zstd_multi_frame_with_skippable_frame() -> None:
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"meta!"
    data = _zstd_frames(b"first\n") + skippable + _zstd_frames(b"second\n", b"third\n")
    for size in (1, 3, len(data)):
        out, decoder = _decode(_chunks(data, size))
        assert out == b"first\nsecond\nthird\n"
        assert decoder.members == 3


def test_zstd_streamed_frame_without_content_size() -> None:
    raw = _payload(lines=800)
    cobj = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    # Block flushes after every 1000 bytes: many small blocks, and no content size in the header.
    pieces = [cobj.compress(p) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK) for p in _chunks(raw, 1000)]
    data = b"".join([*pieces, cobj.flush()])
    assert _decode(_chunks(data, 5000))[0] == raw
    assert _decode(_chunks(data, 7), max_output=300)[0] == raw


def test_none_passes_through_in_bounded_pieces() -> None:
    raw = b"plain text\n" * 1000
    out, decoder = _decode(_chunks(raw, 4096), max_output=1000)
    assert out == raw
    assert decoder.compression == "none"


@pytest.mark.parametrize(
    ("data", "compression"),
    [(b"", "none"), (b"a", "none"), (b"ab\n", "none"), (b"\x28\xb5", "none"), (b"BZh", "none")],
)
def test_inputs_shorter_than_the_magic(data: bytes, compression: str) -> None:
    out, decoder = _decode(_chunks(data, 1) if data else [])
    assert out == data
    assert decoder.compression == compression


def test_compression_is_sniffed_after_four_bytes_even_in_tiny_chunks() -> None:
    decoder = StreamDecoder()
    data = gzip.compress(b"hello\n")
    for i in range(3):
        assert list(decoder.feed(data[i : i + 1])) == []
        assert decoder.compression is None
    out = [*decoder.feed(data[3:4])]
    assert decoder.compression == "gzip"
    out += [p for c in _chunks(data[4:], 1) for p in decoder.feed(c)]
    out += decoder.finish()
    assert b"".join(out) == b"hello\n"


def test_bzip2_magic_needs_a_block_size_digit() -> None:
    assert _decode([b"BZhello\n"])[1].compression == "none"


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2", "none"])
def test_every_chunk_boundary_gives_identical_output(kind: str) -> None:
    raw = b"".join(b"line %d \xe2\x82\xac %s\n" % (i, b"x" * (i % 13)) for i in range(40)) + bytes(500)
    data = raw if kind == "none" else _encoded(kind, raw[:300], raw[300:])
    assert _decode(_chunks(data, 1), max_output=7)[0] == raw
    for cut in range(len(data) + 1):
        assert _decode([data[:cut], data[cut:]], max_output=64)[0] == raw, cut


# -- StreamDecoder: damage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "first_cut"), [("gzip", 2), ("zstd", 4), ("bzip2", 4)])
def test_truncation_is_reported_by_finish(kind: str, first_cut: int) -> None:
    """Every proper prefix (once the magic is recognisable) feeds fine and then fails in finish()."""
    data = _encoded(kind, b"some text that is long enough\n" * 20)
    for cut in range(first_cut, len(data)):
        decoder = StreamDecoder()
        for chunk in _chunks(data[:cut], 16):
            list(decoder.feed(chunk))
        with pytest.raises(DecodeError, match="truncated") as info:
            list(decoder.finish())
        assert 0 <= info.value.offset <= cut


def test_truncated_second_member_is_reported() -> None:
    data = _gzip_members(b"a\n" * 100, b"b\n" * 100)
    decoder = StreamDecoder()
    out = b"".join(decoder.feed(data[:-5]))
    assert out.startswith(b"a\n" * 100)
    with pytest.raises(DecodeError, match=r"member that starts at compressed offset \d+"):
        list(decoder.finish())


def test_corrupt_gzip_raises_with_offset() -> None:
    raw = _payload(lines=2000)
    data = bytearray(gzip.compress(raw))
    for i in range(100, 140):
        data[i] ^= 0x5A
    decoder = StreamDecoder()
    with pytest.raises(DecodeError, match="gzip: corrupt data") as info:
        for chunk in _chunks(bytes(data), 64):
            list(decoder.feed(chunk))
        list(decoder.finish())
    assert 0 <= info.value.offset <= len(data)
    # A failed decoder stays failed instead of resuming mid-stream.
    with pytest.raises(DecodeError, match="already failed"):
        list(decoder.feed(b"more"))


def test_gzip_crc_mismatch_raises() -> None:
    data = bytearray(gzip.compress(b"hello world\n" * 50))
    data[-6] ^= 0xFF
    with pytest.raises(DecodeError, match="gzip"):
        _decode([bytes(data)])


@pytest.mark.parametrize("kind", ["zstd", "bzip2"])
def test_corrupt_zstd_and_bzip2_raise(kind: str) -> None:
    data = bytearray(_encoded(kind, _payload(lines=2000)))
    for i in range(60, 90):
        data[i] ^= 0x5A
    with pytest.raises(DecodeError, match=kind):
        _decode(_chunks(bytes(data), 1000))


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2"])
def test_nul_padding_after_the_last_member_is_ignored(kind: str) -> None:
    data = _encoded(kind, b"a\n", b"b\n") + bytes(1000)
    assert _decode(_chunks(data, 7))[0] == b"a\nb\n"


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2"])
def test_garbage_after_a_member_raises(kind: str) -> None:
    member = _encoded(kind, b"a\n")
    with pytest.raises(DecodeError, match="garbage") as info:
        _decode([member + b"\0\0junk after the member"])
    assert info.value.offset == len(member) + 2


def test_partial_magic_at_the_end_is_truncation() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        _decode([gzip.compress(b"a\n") + b"\x1f"])


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_zip_bomb_is_yielded_in_bounded_pieces(kind: str) -> None:
    """200 MB of zeros compress to ~200 KB (gzip) / ~10 KB (zstd); it must come out piecewise."""
    total = 200 << 20
    block = bytes(1 << 20)
    if kind == "gzip":
        comp = isal_zlib.compressobj(wbits=31)
        data = b"".join([*(comp.compress(block) for _ in range(total // len(block))), comp.flush()])
    else:
        cobj = zstandard.ZstdCompressor(level=1).compressobj(size=total)
        data = b"".join([*(cobj.compress(block) for _ in range(total // len(block))), cobj.flush()])
    assert len(data) < (1 << 20)
    max_output = 1 << 20
    decoder = StreamDecoder(max_output)
    seen = pieces = 0
    for piece in decoder.feed(data):
        assert len(piece) <= max_output
        assert not piece.strip(b"\0")
        seen += len(piece)
        pieces += 1
    for piece in decoder.finish():
        seen += len(piece)
    assert seen == total
    assert pieces >= total // max_output


def test_bzip2_bomb_is_yielded_in_bounded_pieces() -> None:
    data = bz2.compress(bytes(20 << 20), 9)
    max_output = 256 << 10
    out = [len(p) for p in StreamDecoder(max_output).feed(data)]
    assert max(out) <= max_output
    assert sum(out) == 20 << 20


def test_iterator_must_be_consumed_before_the_next_call() -> None:
    decoder = StreamDecoder(max_output=10)
    it = decoder.feed(b"a" * 100)
    next(it)
    with pytest.raises(RuntimeError, match="exhausted"):
        decoder.feed(b"more")
    decoder2 = StreamDecoder()
    decoder2.feed(b"never iterated")
    with pytest.raises(RuntimeError):
        decoder2.finish()


def test_feed_after_finish_is_refused() -> None:
    decoder = StreamDecoder()
    list(decoder.finish())
    with pytest.raises(RuntimeError, match="after finish"):
        decoder.feed(b"x")


@needs_corpus
def test_corpus_gzip_alb_log() -> None:
    data = (CORPUS / "elb" / "clo_alb.log.gz").read_bytes()
    expected = gzip.decompress(data)
    out, decoder = _decode(_chunks(data, 100), max_output=256)
    assert out == expected
    assert decoder.compression == "gzip"


# -- LineFramer --------------------------------------------------------------------------------------------


def _frame(data: bytes, size: int, max_line: int = 1 << 20) -> tuple[list[tuple[int, str]], LineFramer]:
    framer = LineFramer(max_line)
    out: list[tuple[int, str]] = []
    for chunk in _chunks(data, size):
        out += framer.feed(chunk)
    out += framer.finish()
    return out, framer


def _expected_lines(data: bytes) -> list[tuple[int, str]]:
    """The slow, obviously right version."""
    out = []
    pos = 0
    for raw in data.split(b"\n"):
        text = raw.decode("utf-8", "replace")
        text = text[:-1] if text.endswith("\r") else text
        if text.strip():
            out.append((pos, text))
        pos += len(raw) + 1
    return out


LINES_SAMPLE = (
    b"first line\r\n\n   \n\t\r\nsecond \xc3\xa9t\xc3\xa9 \xe2\x82\xac\n"
    b"bad \xff\xfe utf8\ncut \xe2\x82\nmixed\r\n\r\n\xf0\x9f\x98\x80 emoji last"
)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 1000])
def test_line_offsets_are_real_byte_offsets(size: int) -> None:
    out, framer = _frame(LINES_SAMPLE, size)
    assert out == _expected_lines(LINES_SAMPLE)
    assert framer.lines == len(out)
    assert framer.bytes == len(LINES_SAMPLE)
    for offset, text in out:
        raw = LINES_SAMPLE[offset:].split(b"\n", 1)[0]
        assert raw.decode("utf-8", "replace").rstrip("\r") == text


def test_crlf_no_trailing_newline_and_replacement() -> None:
    out, _ = _frame(LINES_SAMPLE, 1000)
    texts = [t for _, t in out]
    assert texts[0] == "first line"
    assert "second été €" in texts
    assert "bad \ufffd\ufffd utf8" in texts
    assert "cut \ufffd" in texts
    assert "mixed" in texts
    assert texts[-1] == "😀 emoji last"


def test_multibyte_character_split_across_chunks() -> None:
    data = "é€😀\n".encode() * 50
    for size in range(1, 12):
        out, _ = _frame(data, size)
        assert [t for _, t in out] == ["é€😀"] * 50


def test_large_ascii_and_utf8_regions_match_slow_framing() -> None:
    rnd = random.Random(3)
    lines = [rnd.choice([b"", b" ", b"\r", b"abc\r", "žluť".encode(), b"x" * rnd.randint(1, 300)]) for _ in range(5000)]
    for data in (b"\n".join(lines), b"\n".join(line.replace("ž".encode(), b"z") for line in lines)):
        for size in (65536, 4093):
            assert _frame(data, size)[0] == _expected_lines(data)


@pytest.mark.parametrize("first", [b"short", "šhort".encode()[:-1]])
def test_oversize_line_is_reported_not_emitted_and_not_kept(first: bytes) -> None:
    big = b"B" * 10_000
    data = first + b"\n" + big + b"\r\nafter\n" + b"C" * 300 + b"\nend"
    for size in (1, 7, 100, 4096, len(data)):
        framer = LineFramer(max_line_bytes=256)
        out: list[tuple[int, str]] = []
        peak = 0
        for chunk in _chunks(data, size):
            out += framer.feed(chunk)
            peak = max(peak, len(framer._tail))
        out += framer.finish()
        assert out == [(0, first.decode()), (6 + 10_002, "after"), (len(data) - 3, "end")], size
        assert peak <= 256
        oversize = framer.take_oversize()
        assert [(o, n) for o, n, _ in oversize] == [(6, 10_001), (6 + 10_002 + 6, 300)]
        assert oversize[0][2] == "B" * 256
        assert framer.oversize == []


def test_line_of_exactly_the_limit_is_kept() -> None:
    out, framer = _frame(b"x" * 64 + b"\n" + b"y" * 64, 10, max_line=64)
    assert out == [(0, "x" * 64), (65, "y" * 64)]
    assert framer.oversize == []


def test_oversize_last_line_without_newline() -> None:
    framer = LineFramer(max_line_bytes=8)
    assert framer.feed(b"ok\n0123456789abc") == [(0, "ok")]
    assert framer.finish() == []
    assert framer.take_oversize() == [(3, 13, "01234567")]


def test_empty_input_and_blank_only() -> None:
    assert _frame(b"", 10)[0] == []
    assert _frame(b"\n\n \r\n\t", 2)[0] == []


@needs_corpus
def test_corpus_alb_through_decoder_and_framer() -> None:
    data = (CORPUS / "elb" / "clo_alb.log.gz").read_bytes()
    text = gzip.decompress(data)
    framer = LineFramer()
    out: list[tuple[int, str]] = []
    decoder = StreamDecoder(max_output=100)
    for chunk in _chunks(data, 50):
        for piece in decoder.feed(chunk):
            out += framer.feed(piece)
    for piece in decoder.finish():
        out += framer.feed(piece)
    out += framer.finish()
    assert out == _expected_lines(text)
    assert out
    for offset, line in out:
        assert text[offset : offset + len(line.encode())].decode() == line


# -- JsonRecordsFramer -------------------------------------------------------------------------------------


def _records(data: bytes, size: int = 7) -> tuple[list[tuple[int, Any]], list[tuple[int, str, str]]]:
    framer = JsonRecordsFramer()
    for chunk in _chunks(data, size):
        framer.feed(chunk)
    return framer.finish()


def test_records_wrapper() -> None:
    data = b'{"Records": [{"a": 1}, {"b": 2}, 3, [4]]}'
    records, errors = _records(data)
    assert records == [(0, {"a": 1}), (1, {"b": 2})]
    assert [(i, raw) for i, raw, _ in errors] == [(2, "3"), (3, "[4]")]


def test_configuration_items_list_and_single_dict() -> None:
    assert _records(b'{"fileVersion": "1.0", "configurationItems": [{"x": 1}]}')[0] == [(0, {"x": 1})]
    assert _records(b'[{"x": 1}, {"y": 2}]')[0] == [(0, {"x": 1}), (1, {"y": 2})]
    assert _records(b'{"eventName": "X", "Records": "not a list"}')[0] == [
        (0, {"eventName": "X", "Records": "not a list"})
    ]
    records, errors = _records(b'"just a string"')
    assert records == []
    assert errors[0][2].endswith("not an object")


def test_ndjson_offsets_and_broken_line() -> None:
    lines = [b'{"a": 1}', b"", b'  {"b": "\xc3\xa9"}  ', b'{"broken": ', b"42", b'{"c": 3}']
    data = b"\n".join(lines) + b"\n"
    records, errors = _records(data)
    assert [r for _, r in records] == [{"a": 1}, {"b": "é"}, {"c": 3}]
    for offset, record in records:
        assert orjson.loads(data[offset:].split(b"\n", 1)[0]) == record
    assert [(o, raw) for o, raw, _ in errors] == [(data.index(b'{"broken'), '{"broken":'), (data.index(b"42"), "42")]
    assert errors[0][2]


def test_concatenated_objects_without_separator() -> None:
    objs = [{"a": 1, "s": "}{ inside a string"}, {"b": "é"}, {"c": [1, {"d": 2}]}]
    data = b"".join(orjson.dumps(o) for o in objs)
    records, errors = _records(data, 5)
    assert [r for _, r in records] == objs
    assert errors == []
    for offset, record in records:
        assert json.JSONDecoder().raw_decode(data[offset:].decode())[0] == record
    # Fast path (no `}{` inside strings), several lines of them, and a damaged tail.
    data2 = b'{"x":1}{"y":2}\n{"z":3} {"w":4}{"v":\n'
    records, errors = _records(data2)
    assert records == [(0, {"x": 1}), (7, {"y": 2}), (15, {"z": 3}), (23, {"w": 4})]
    assert [(o, raw) for o, raw, _ in errors] == [(30, '{"v":')]


def test_blank_document_and_size_limit() -> None:
    assert _records(b"  \n") == ([], [])
    framer = JsonRecordsFramer(max_document_bytes=10)
    framer.feed(b"12345")
    with pytest.raises(FramingError, match="max_document_bytes"):
        framer.feed(b"678901")


@needs_corpus
@pytest.mark.parametrize("path", sorted((CORPUS / "cloudtrail").glob("*.json")), ids=lambda p: p.name)
def test_corpus_cloudtrail_files(path: Path) -> None:
    data = path.read_bytes()
    doc = json.loads(data)
    records, errors = _records(data, 100)
    assert errors == []
    if isinstance(doc, dict) and "Records" in doc:
        assert [r for _, r in records] == doc["Records"]
    else:
        assert records == [(0, doc)]


@needs_corpus
@pytest.mark.parametrize(
    "name", ["elastic-integrations_test-console-login-json.log", "elastic-integrations_test-assume-role-json.log"]
)
def test_corpus_cloudtrail_ndjson(name: str) -> None:
    data = (CORPUS / "cloudtrail" / name).read_bytes()
    records, errors = _records(data, 333)
    expected = [json.loads(line) for line in data.splitlines() if line.strip()]
    assert errors == []
    assert [r for _, r in records] == expected
    assert [o for o, _ in records] == [o for o, _ in _expected_lines(data)]



def test_plain_says_whether_any_token_needs_json_escaping() -> None:
    """`plain` covers every line a call returned, including one begun in earlier chunks; whitespace (the
    separators between tokens) does not count, a quote, a backslash or another control character does."""
    def plains(*chunks: bytes) -> list[bool]:
        framer = LineFramer(check_plain=True)
        out = []
        for chunk in chunks:
            framer.feed(chunk)
            out.append(framer.plain)
        framer.finish()
        return [*out, framer.plain]

    assert plains(b"a b\tc\r\n", b"d\x1ce\x0bf\x0cg\n") == [True, True, True]
    assert plains(b"a\x01b\n", b"c d\n") == [False, True, True]
    for dirty in (b'"', b"\\", b"\x00", b"\x08", b"\x0e", b"\x1b"):
        assert plains(b"a b\n", b"c" + dirty + b"d\n", b"e\n") == [True, False, True, True], dirty
    # A line begun in a dirty chunk stays dirty until it is emitted, however many clean chunks it spans.
    assert plains(b"a\nb\"c", b"ddd", b"eee\nf\n", b"g") == [False, False, False, True, True]
    assert plains(b"a\nb\"c", b"ddd") == [False, False, False]  # ... and at `finish`
    assert plains(b"a \xff\xfe b\n") == [True, True]  # not UTF-8: emitted with U+FFFD, which needs no escape
    unchecked = LineFramer()
    unchecked.feed(b"a b\n")
    assert not unchecked.plain  # only asked for when the pipeline may serialise
