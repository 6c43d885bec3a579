"""Does a multi-gigabyte object stream through StreamDecoder + LineFramer in constant memory, and how fast?

A benchmark script, not a test: it writes a gzip'd VPC-flow-like log of `--size-mb` uncompressed MB
(default 2048) to a temp file without ever holding it in memory, then reads it back in 1 MiB chunks, as
the worker reads S3 bodies. Each measurement runs in a fresh child process so that its peak RSS
(ru_maxrss) belongs to the decoding alone, not to the generator or to an earlier run.

    .venv/bin/python bench/decode_memory.py                     # 2 GB, isal, decode + frame
    .venv/bin/python bench/decode_memory.py --size-mb 256 --compare-zlib
    .venv/bin/python bench/decode_memory.py --file some.log.gz  # an existing object, any compression
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from isal import isal_zlib

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worker import decoding  # noqa: E402

MB = 1 << 20


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_bytes() -> int:
    """Current resident set size; the peak alone does not say whether memory grows with the input."""
    return _status("VmRSS")


def peak_rss_bytes() -> int:
    """ru_maxrss, in bytes (Linux reports KiB).

    Linux carries ru_maxrss across exec, so a child inherits its parent's peak at fork time: that is
    why the parent never holds the generated data, and why VmHWM (per address space, reset at exec)
    is reported next to it.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _line_pool(rnd: random.Random, size: int) -> list[bytes]:
    """Distinct VPC flow log v2 records: enough variety that gzip does not see one repeated line."""
    actions = [b"ACCEPT OK", b"ACCEPT OK", b"ACCEPT OK", b"REJECT OK", b"- - NODATA"]
    enis = [b"eni-%017x" % rnd.getrandbits(68) for _ in range(64)]
    pool = []
    for _ in range(size):
        src = b"10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        dst = b"%d.%d.%d.%d" % (rnd.choice([172, 52, 10, 3]), rnd.randrange(256), rnd.randrange(256),
                                rnd.randrange(256))
        pool.append(
            b"2 123456789012 %s %s %s %d %d %d %d %d {T} {T2} %s\n"
            % (rnd.choice(enis), src, dst, rnd.choice([443, 80, 22, 53, rnd.randrange(1024, 65536)]),
               rnd.randrange(1024, 65536), rnd.choice([6, 6, 6, 17, 1]), rnd.randrange(1, 500),
               rnd.randrange(40, 2_000_000), rnd.choice(actions))
        )
    return pool


def generate(path: Path, size: int, member_bytes: int, level: int, seed: int = 1) -> tuple[int, int]:
    """Write `size` uncompressed bytes of flow-log lines, gzip'd, in 1 MiB batches; returns (raw, lines)."""
    rnd = random.Random(seed)
    pool = _line_pool(rnd, 200_000)
    avg = sum(map(len, pool)) / len(pool)
    per_batch = max(1, int(MB / avg))
    written = lines = in_member = 0
    t0 = 1_700_000_000
    comp = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        while written < size:
            # Per-batch timestamps, so the text is not a fixed set of lines shuffled.
            t = t0 + written // MB
            batch = b"".join(rnd.choices(pool, k=per_batch))
            batch = batch.replace(b"{T}", b"%d" % t).replace(b"{T2}", b"%d" % (t + 60))
            if written + len(batch) > size:
                batch = batch[: size - written]
                batch = batch[: batch.rfind(b"\n") + 1] or batch
            f.write(comp.compress(batch))
            written += len(batch)
            in_member += len(batch)
            lines += batch.count(b"\n") + (not batch.endswith(b"\n"))
            if member_bytes and in_member >= member_bytes and written < size:
                f.write(comp.flush())
                comp = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
                in_member = 0
        f.write(comp.flush())
    return written, lines


def run_once(path: str, impl: str, frame: bool, chunk: int, max_output: int) -> dict[str, Any]:
    """One measurement, meant to run in its own process (see main)."""
    if impl == "zlib":
        decoding._ZLIB = zlib
    rss_before = rss_bytes()
    decoder = decoding.StreamDecoder(max_output)
    framer = decoding.LineFramer()
    out_bytes = lines = 0
    rss_max_sampled = rss_before
    n_chunks = 0
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            for piece in decoder.feed(data):
                out_bytes += len(piece)
                if frame:
                    lines += len(framer.feed(piece))
            n_chunks += 1
            if n_chunks % 16 == 0:
                rss_max_sampled = max(rss_max_sampled, rss_bytes())
    for piece in decoder.finish():
        out_bytes += len(piece)
        if frame:
            lines += len(framer.feed(piece))
    if frame:
        lines += len(framer.finish())
        oversize = len(framer.take_oversize())
    else:
        oversize = 0
    seconds = time.perf_counter() - start
    return {
        "impl": impl,
        "frame": frame,
        "compression": decoder.compression,
        "members": decoder.members,
        "compressed_bytes": decoder.compressed_bytes,
        "uncompressed_bytes": out_bytes,
        "lines": lines,
        "oversize": oversize,
        "seconds": seconds,
        "mb_per_s": out_bytes / MB / seconds if seconds else 0.0,
        "rss_before": rss_before,
        "rss_after": rss_bytes(),
        "rss_max_sampled": rss_max_sampled,
        "peak_rss": peak_rss_bytes(),
        "vm_hwm": _status("VmHWM"),
    }


def measure(path: Path, impl: str, frame: bool, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--run-one", str(path), "--impl", impl, "--chunk-kb", str(args.chunk_kb),
           "--max-output-kb", str(args.max_output_kb)]
    if frame:
        cmd.append("--frame")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _mib(n: int) -> str:
    return f"{n / MB:8.1f} MiB"


def report(r: dict[str, Any]) -> None:
    what = "decode+frame" if r["frame"] else "decode only "
    print(
        f"{r['impl']:>4} {what}: {r['uncompressed_bytes']:,} bytes uncompressed "
        f"({r['compressed_bytes']:,} compressed, {r['members']} member(s)), {r['lines']:,} lines, "
        f"{r['seconds']:.2f} s, {r['mb_per_s']:.0f} MB/s"
    )
    print(
        f"     RSS before {_mib(r['rss_before'])}, after {_mib(r['rss_after'])}, max sampled "
        f"{_mib(r['rss_max_sampled'])}, peak: ru_maxrss {_mib(r['peak_rss'])}, VmHWM {_mib(r['vm_hwm'])}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048, help="uncompressed size to generate (MiB)")
    ap.add_argument("--file", help="decode this file instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--member-mb", type=int, default=0, help="start a new gzip member every N MiB (Firehose-like)")
    ap.add_argument("--level", type=int, default=2, help="isal compression level of the generated file (0-3)")
    ap.add_argument("--compare-zlib", action="store_true", help="also time stdlib zlib and report the ratio")
    ap.add_argument("--chunk-kb", type=int, default=1024)
    ap.add_argument("--max-output-kb", type=int, default=4096)
    ap.add_argument("--run-one", help=argparse.SUPPRESS)
    ap.add_argument("--generate", help=argparse.SUPPRESS)
    ap.add_argument("--impl", default="isal", choices=["isal", "zlib"], help=argparse.SUPPRESS)
    ap.add_argument("--frame", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.run_one:
        result = run_once(args.run_one, args.impl, args.frame, args.chunk_kb * 1024, args.max_output_kb * 1024)
        print(json.dumps(result))
        return
    if args.generate:
        raw, lines = generate(Path(args.generate), args.size_mb * MB, args.member_mb * MB, args.level)
        print(json.dumps({"raw": raw, "lines": lines}))
        return

    tmp: Path | None = None
    if args.file:
        path = Path(args.file)
    else:
        fd, name = tempfile.mkstemp(prefix="sluice-bench-", suffix=".log.gz")
        os.close(fd)
        path = tmp = Path(name)
        t = time.perf_counter()
        # In a child, so that this process (whose peak every measuring child inherits) stays small.
        cmd = [sys.executable, __file__, "--generate", name, "--size-mb", str(args.size_mb),
               "--member-mb", str(args.member_mb), "--level", str(args.level)]
        gen = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        raw, lines = gen["raw"], gen["lines"]
        size = path.stat().st_size
        print(f"generated {path}: {raw:,} bytes, {lines:,} lines, gzip {size:,} bytes "
              f"(ratio {raw / size:.1f}x) in {time.perf_counter() - t:.1f} s")
    try:
        runs = [("isal", False), ("isal", True)]
        if args.compare_zlib:
            runs += [("zlib", False), ("zlib", True)]
        results = {}
        for impl, frame in runs:
            results[impl, frame] = r = measure(path, impl, frame, args)
            report(r)
        if args.compare_zlib:
            for frame in (False, True):
                isal_r, zlib_r = results["isal", frame], results["zlib", frame]
                what = "decode+frame" if frame else "decode only"
                print(f"isal/zlib speed ratio, {what}: {isal_r['mb_per_s'] / zlib_r['mb_per_s']:.2f}x "
                      f"({isal_r['mb_per_s']:.0f} vs {zlib_r['mb_per_s']:.0f} MB/s)")
    finally:
        if tmp is not None and not args.keep:
            tmp.unlink(missing_ok=True)
        elif tmp is not None:
            print(f"kept {tmp}")


if __name__ == "__main__":
    main()
