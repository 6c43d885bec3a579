"""Statistics and output of `sluice bench`: the markdown table on stdout, the JSON file, the environment lines.

Pure functions over plain dicts, so that the formatting is unit-tested without running anything.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MB = 1_000_000
"""Throughput is in decimal MB (10^6 bytes) of uncompressed input, as AWS bills and reports bytes."""


def median(values: Iterable[float]) -> float | None:
    """The median (mean of the middle two for an even count); None for no values."""
    data = sorted(values)
    if not data:
        return None
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in 0..100): always one of the samples, so p99 of 10 samples is the largest."""
    data = sorted(values)
    if not data:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    rank = max(1, math.ceil(q / 100 * len(data)))
    return data[rank - 1]


def medians(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per key, the median of the numeric values the runs have for it (keys missing from every run are left out)."""
    keys: list[str] = []
    for run in runs:
        keys.extend(k for k in run if k not in keys)
    out: dict[str, Any] = {}
    for key in keys:
        values = [run[key] for run in runs if isinstance(run.get(key), int | float) and not isinstance(run[key], bool)]
        m = median(values)
        if m is not None:
            out[key] = m
    return out


def environment() -> dict[str, Any]:
    """The interpreter and the machine the figures were measured on."""
    cflags = sysconfig.get_config_var("CFLAGS") or ""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "python": sys.version.split()[0],
        "python_build": sys.version,
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "optimised_build": "-O2" in cflags or "-O3" in cflags,
        "lto": "-flto" in cflags,
        "cores": os.cpu_count(),
        "cpu": model or platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "load_average": load,
    }


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if digits == 0 or (isinstance(value, int) and not isinstance(value, bool)):
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("objects", "objects", 0),
    ("MB", "mb", 1),
    ("documents", "documents", 0),
    ("Sluice MB/s", "mb_s", 1),
    ("docs/s", "docs_s", 0),
    ("objects/s", "objects_s", 1),
    ("CPU s/GB", "cpu_s_per_gb", 1),
    ("CPU use", "cpu_use", 2),
    ("peak RSS MB", "peak_rss_mb", 0),
    ("parse-only MB/s", "parse_mb_s", 1),
    ("reference MB/s", "reference_mb_s", 1),
    ("ratio", "ratio", 2),
    ("CPU ratio", "cpu_ratio", 2),
    ("p50 ms", "latency_p50_ms", 0),
    ("p99 ms", "latency_p99_ms", 0),
)
"""(header, key in a type's summary, decimals) of the markdown table."""


def table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """The markdown table: one row per log type, from each type's summary."""
    head = "| log type | " + " | ".join(h for h, _, _ in COLUMNS) + " |"
    rule = "|---|" + "|".join("---:" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for log_type, row in rows.items():
        lines.append(f"| {log_type} | " + " | ".join(_num(row.get(key), d) for _, key, d in COLUMNS) + " |")
    return "\n".join(lines)


def sinks_table(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The OpenSearch path and the Parquet sink side by side, per core (CPU time, so load matters less)."""
    rows = [(t, r) for t, r in summary.items() if r.get("parquet_mb_s_core")]
    if not rows:
        return []
    out = ["Sinks, MB/s of uncompressed logs per core (from CPU time):", "",
           "| log type | OpenSearch, end to end | parsing alone | Parquet sink alone | parsing + Parquet sink | "
           "Parquet rows/s alone | Parquet bytes/row |", "|---|---:|---:|---:|---:|---:|---:|"]
    for t, r in rows:
        e2e = 1000 / r["cpu_s_per_gb"] if r.get("cpu_s_per_gb") else None
        parse = 1000 / r["parse_cpu_s_per_gb"] if r.get("parse_cpu_s_per_gb") else None
        pq = r["parquet_mb_s_core"]
        both = 1 / (1 / parse + 1 / pq) if parse else None
        out.append(f"| {t} | {_num(e2e, 1)} | {_num(parse, 1)} | {_num(pq, 1)} | {_num(both, 1)} | "
                   f"{_num(r.get('parquet_rows_s_core'), 0)} | {_num(r.get('parquet_bytes_per_row'), 0)} |")
    out.append("")
    out.append("OpenSearch, end to end: the worker process against the bulk stub (1000 / CPU s/GB). Parquet sink "
               "alone: the first object's documents (up to 30,000) through `ParquetSink` in this process, S3 in "
               "memory, zstd; parsing + Parquet sink: both costs added, what a worker writing only Parquet would "
               "spend per MB before S3 and SQS.")
    return [*out, ""]


def scaling_table(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """`--scaling N`: MB/s with N worker processes against one process, per type."""
    rows = [(t, r) for t, r in summary.items() if "scaling" in r]
    if not rows:
        return []
    n = rows[0][1]["scaling_processes"]
    out = [f"Scaling, `sluice run --processes {n}` (one run) against one process (the median of the runs above, or "
           "one run with the same max_in_flight when the scaling runs set it):", "",
           f"| log type | 1 process MB/s | {n} processes MB/s | scaling | against the median | CPU use ({n} "
           "processes) | CPU use per process | peak RSS MB per process |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    out += [f"| {t} | {r.get('scaling_base_mb_s', r['mb_s']):.1f} | {r['scaling_mb_s']:.1f} | {r['scaling']:.2f}x | "
            f"{r.get('scaling_vs_median', r['scaling']):.2f}x | {r['scaling_cpu_use']:.2f} | "
            f"{' / '.join(f'{c:.2f}' for c in r.get('scaling_cpu_use_per_process') or []) or '-'} | "
            f"{r['scaling_peak_rss_mb']:.0f} |" for t, r in rows]
    limited = {t: r["scaling_max_in_flight"] for t, r in rows if "scaling_max_in_flight" in r}
    if limited:
        out += ["", "The scaling runs (and their one-process baseline) set `sources.bench.max_in_flight` (" + ", ".join(
            f"{t} {v}" for t, v in limited.items()) + ") to objects / (2 x processes): with the default 10, the "
                "first process to poll receives every queued object and the others idle."]
    return [*out, ""]


def small_objects_table(result: Mapping[str, Any]) -> list[str]:
    """The small-objects phase: the per-object cost (SQS receive, GetObject, delete) rather than the per-byte one."""
    small = result.get("small_objects")
    if not small:
        return []
    runs = small.get("runs") or []
    out = [f"Small objects: {small['objects']:,} {small['log_type']} objects of ~{small['kb']:g} KB "
           f"({small['documents']:,} documents), one worker process against {small['aws']}, "
           f"median of {len(runs)} run(s):", "",
           "| objects/s | worker CPU ms/object | worker CPU use | AWS stub CPU use | bulk stub CPU use | "
           "receives/object | deletes/object | bulk requests/object | peak RSS MB |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
           f"| {_num(small.get('objects_s'), 0)} | {_num(small.get('cpu_ms_per_object'), 2)} | "
           f"{_num(small.get('cpu_use'), 2)} | {_num(small.get('aws_stub_cpu_use'), 2)} | "
           f"{_num(small.get('stub_cpu_use'), 2)} | {_num(small.get('requests_ReceiveMessage'), 2)} | "
           f"{_num(small.get('requests_DeleteMessageBatch', 0) + small.get('requests_DeleteMessage', 0), 2)} | "
           f"{_num(small.get('bulk_requests_per_object'), 2)} | {_num(small.get('peak_rss_mb'), 0)} |", ""]
    if len(runs) > 1:
        out += ["Per run: " + ", ".join(f"{r['objects_s']:.0f} objects/s at {r['cpu_ms_per_object']:.2f} ms"
                                        for r in runs), ""]
    out += ["objects/s: objects / wall seconds from their notifications being queued to the stub holding their "
            "last document; worker CPU ms/object: the worker process's CPU time over the phase / objects (what "
            "sets the objects/s of a busy core); receives, deletes: SQS calls per object (batches of up to 10); "
            "bulk requests: `_bulk` calls per object.",
            ""]
    return out


def render(result: Mapping[str, Any]) -> str:
    """The whole stdout report: what was measured where, the table, how to read it."""
    env = result["environment"]
    settings = result["settings"]
    out = [
        "# sluice bench",
        "",
        f"- interpreter: {env['executable']} {env['python_build'].splitlines()[0]} ({env['implementation']}), "
        f"optimised build: {env['optimised_build']}, lto: {env['lto']}",
        f"- machine: {env['cores']} cores, {env['cpu']}, load average at start {env['load_average']}, "
        f"at end {result.get('load_average_end')}",
        f"- bulk endpoint: {settings['bulk_endpoint']}",
        f"- AWS endpoint: {settings['aws_endpoint']}",
        f"- input per type: {settings['input']}; {settings['runs']} run(s), medians shown",
        f"- worker: one `sluice run` process, default settings except endpoints and SQS wait_time 1 s (bulk gzip "
        f"{'on' if settings['compress'] else 'off'})"
        + "".join(f", {item}" for item in settings.get("worker_overrides") or [])
        + f"; reference: one fused loop in this process, bulk bodies gzip level 1 "
        f"{'on' if settings['compress'] else 'off'}",
        "",
        table(result["summary"]),
        "",
        *sinks_table(result["summary"]),
        *scaling_table(result["summary"]),
        *small_objects_table(result),
        "Sluice MB/s: uncompressed bytes / wall seconds from the objects' notifications being queued (for a "
        "worker that has already ingested one small object) to the stub holding their last document (the last, "
        "partly filled bulk body leaves as soon as nothing is being parsed: `bulk.flush_when_idle`). "
        "CPU s/GB: the worker process's user+system CPU per uncompressed GB; "
        "CPU use: CPU seconds per wall second (1.0 = one core busy). peak RSS: VmHWM of the worker (the largest "
        "process with --processes). "
        "parse-only: Sluice's framing + parsing in this process, no decompression, serialisation or I/O. "
        "reference: the fused loop (inflate, split, map, orjson, bulk bodies). "
        "ratio: Sluice MB/s / reference MB/s (wall); CPU ratio: the same from CPU time (reference CPU s/GB / "
        "Sluice CPU s/GB), less sensitive to other load on the machine. "
        "p50/p99: upload of a small object -> all its documents at the stub, under light load "
        f"({settings['latency']}).",
    ]
    for note in result.get("notes", []):
        out.append(f"\nnote: {note}")
    return "\n".join(out) + "\n"
