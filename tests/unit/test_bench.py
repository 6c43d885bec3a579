"""`sluice bench`, the parts that need no servers: inputs, the reference loop, statistics and the report."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from worker.__main__ import build_parser
from worker.bench import BENCH_TYPES, parse_only, reference
from worker.bench.objects import file_objects, generate, make_object, object_key, s3_access_lines
from worker.bench.report import COLUMNS, median, medians, percentile, render, table
from worker.bench.runner import Options, cpu_seconds, status_bytes
from worker.decoding import JsonRecordsFramer, LineFramer
from worker.model import Origin
from worker.parsers import ParseContext
from worker.parsers.stream import StreamParser
from worker.routing import route_s3_key, sniff_log_type


def _sluice_documents(log_type: str, key: str, raw: bytes) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
    """(Sluice's documents, its failures, the records the reference mapper gets) for one decoded object."""
    route = route_s3_key(key)
    stream = StreamParser(log_type, ParseContext(bucket="b", key=key, account_id=route.account_id,
                                                 region=route.region))
    if log_type == "cloudtrail":
        framer = JsonRecordsFramer()
        framer.feed(raw)
        records, _ = framer.finish()
    else:
        lines = LineFramer()
        records = lines.feed(raw) + lines.finish()
    docs, failures, _ = stream.process(records)
    return [body for _, _, _, body in docs], failures, [record for _, record in records]


# --- inputs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_type", BENCH_TYPES)
def test_generated_objects_route_to_their_type_and_parse_cleanly(log_type: str) -> None:
    obj = make_object(log_type, 100_000, seed=3)
    assert route_s3_key(obj.key).log_type == log_type
    raw = gzip.decompress(obj.body)
    assert len(raw) == obj.raw_size >= 90_000  # JSON records are sized by estimate
    assert sniff_log_type(raw[:65536].decode()) == log_type
    docs, failures, _ = _sluice_documents(log_type, obj.key, raw)
    assert failures == []
    assert len(docs) == obj.records > 0


def test_generation_is_deterministic_and_sized() -> None:
    assert make_object("alb", 50_000, seed=9).body == make_object("alb", 50_000, seed=9).body
    assert make_object("alb", 50_000, seed=9).body != make_object("alb", 50_000, seed=10).body
    seen: list[tuple[int, int]] = []
    objects = generate("vpc_flow", 300_000, 100_000, seed=2, progress=lambda have, total: seen.append((have, total)))
    assert len(objects) == 3
    assert len({o.key for o in objects}) == 3
    assert sum(o.raw_size for o in objects) >= 300_000
    assert seen[-1][0] == sum(o.raw_size for o in objects)


def test_s3_access_lines_look_like_s3_server_access_logs() -> None:
    line = next(iter(s3_access_lines(1, seed=5)))
    assert sniff_log_type(line) == "s3_access"
    assert line.count('"') == 6
    assert route_s3_key(object_key("s3_access", 77)).log_type == "s3_access"


def test_file_objects_take_a_type_or_detect_it(tmp_path: Path) -> None:
    alb = make_object("alb", 20_000, seed=1)
    path = tmp_path / "some.log.gz"
    path.write_bytes(alb.body)

    def decode(body: bytes) -> bytes:
        return parse_only.decompress(body)

    def sniff(head: bytes) -> str | None:
        return sniff_log_type(head.decode())

    detected, named = file_objects([str(path), f"alb={path}"], decode, sniff)
    assert detected.log_type == named.log_type == "alb"
    assert detected.raw_size == alb.raw_size
    assert route_s3_key(detected.key).log_type == "alb"
    assert detected.key != named.key
    with pytest.raises(ValueError, match="no known log type"):
        bad = tmp_path / "bad.txt"
        bad.write_bytes(b"hello\nworld\n")
        file_objects([str(bad)], decode, sniff)


# --- the reference loop ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_type", BENCH_TYPES)
def test_reference_builds_the_documents_sluice_builds(log_type: str) -> None:
    """The ceiling is only meaningful if it does the same work: same documents, field for field."""
    obj = make_object(log_type, 150_000, seed=21)
    docs, _, records = _sluice_documents(log_type, obj.key, gzip.decompress(obj.body))
    route = route_s3_key(obj.key)
    mapper = reference.MAPPERS[log_type](route.account_id, route.region)
    mine = [doc for doc in map(mapper, records) if doc is not None]
    assert len(mine) == len(docs)
    for ours, theirs in zip(mine, docs, strict=True):
        assert ours == theirs


@pytest.mark.parametrize("log_type", BENCH_TYPES)
def test_reference_run_counts_and_batches(log_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reference, "BULK_BYTES", 64 * 1024)
    objects = [make_object(log_type, 120_000, seed=s) for s in (1, 2)]
    result = reference.run(log_type, [(o.key, o.body) for o in objects])
    assert result.documents == sum(o.records for o in objects)
    assert result.raw_bytes == sum(o.raw_size for o in objects)
    assert result.bodies > 2  # cut at the (lowered) body size
    assert 0 < result.sent_bytes < result.body_bytes  # gzip'd
    assert result.seconds > 0 and result.cpu_seconds >= 0
    plain = reference.run(log_type, [(o.key, o.body) for o in objects], compress=False)
    assert plain.sent_bytes == plain.body_bytes == result.body_bytes


def test_reference_bodies_are_bulk_ndjson(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[bytes] = []

    def keep(data: bytes, compresslevel: int) -> bytes:
        captured.append(bytes(data))
        return b"x"

    monkeypatch.setattr("worker.bench.reference.igzip.compress", keep)
    obj = make_object("vpc_flow", 30_000, seed=4)
    reference.run_object("vpc_flow", obj.key, obj.body, reference.ReferenceResult(), bucket="bkt")
    lines = b"".join(captured).splitlines()
    assert len(lines) == 2 * obj.records
    action = orjson.loads(lines[0])["create"]
    assert action["_index"] == "sluice-vpc_flow-2026.11.22"
    assert action["_id"].startswith(Origin("s", "s3", "bkt", obj.key, "etag:bench").id_prefix() + ".")
    assert orjson.loads(lines[1])["event"]["category"] == ["network"]


def test_reference_reads_multi_member_gzip_and_a_last_line_without_newline() -> None:
    obj = make_object("alb", 40_000, seed=8)
    raw = gzip.decompress(obj.body).rstrip(b"\n")
    half = raw.index(b"\n", len(raw) // 2) + 1
    body = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    result = reference.run("alb", [(obj.key, body)])
    assert result.documents == obj.records
    assert result.raw_bytes == len(raw)


def test_id_prefix_is_the_workers() -> None:
    assert reference.id_prefix("b", "k/e.gz", "etag:abc") == Origin("x", "s3", "b", "k/e.gz", "etag:abc").id_prefix()


def test_parse_only_counts_documents() -> None:
    objects = [make_object("cloudtrail", 60_000, seed=1), make_object("cloudtrail", 60_000, seed=2)]
    result = parse_only.run("cloudtrail", [(o.key, parse_only.decompress(o.body)) for o in objects])
    assert result.documents == sum(o.records for o in objects)
    assert result.failures == 0
    assert result.raw_bytes == sum(o.raw_size for o in objects)


# --- statistics and the report ---------------------------------------------------------------------------------


def test_median() -> None:
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4, 1, 3, 2]) == 2.5


def test_percentile_is_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 11)]
    assert percentile(samples, 50) == 5.0
    assert percentile(samples, 99) == 10.0
    assert percentile(samples, 90) == 9.0
    assert percentile(samples, 0) == 1.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(samples, 101)


def test_medians_of_runs_skip_non_numbers() -> None:
    runs: list[dict[str, Any]] = [{"mb_s": 10.0, "name": "a", "ok": True}, {"mb_s": 30.0, "extra": 1}, {"mb_s": 20.0}]
    assert medians(runs) == {"mb_s": 20.0, "extra": 1}


def _result() -> dict[str, Any]:
    row = {"objects": 8, "mb": 64.0, "documents": 600_000, "mb_s": 5.25, "docs_s": 49_000.4, "objects_s": 0.66,
           "cpu_s_per_gb": 190.0, "cpu_use": 0.98, "peak_rss_mb": 150.2, "parse_mb_s": 14.0,
           "reference_mb_s": 10.5, "ratio": 0.5, "cpu_ratio": 0.52, "latency_p50_ms": 420.0}
    return {
        "environment": {"executable": "/venv/bin/python", "python_build": "3.11.2 (main) [GCC 12.2.0]",
                        "implementation": "CPython", "optimised_build": True, "lto": False, "cores": 2,
                        "cpu": "test cpu", "load_average": [0.5, 0.5, 0.5]},
        "settings": {"bulk_endpoint": "a stub", "aws_endpoint": "moto", "input": "generated", "runs": 3,
                     "compress": True, "latency": "10 objects"},
        "summary": {"vpc_flow": row},
        "notes": ["something to know"],
        "load_average_end": [1.0, 1.0, 1.0],
    }


def test_table_formats_every_column() -> None:
    text = table(_result()["summary"])
    head, rule, row = text.splitlines()
    assert head.count("|") == rule.count("|") == row.count("|") == len(COLUMNS) + 2
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "vpc_flow"
    assert cells[1:5] == ["8", "64.0", "600,000", "5.2"]
    assert cells[-2:] == ["420", "-"]  # p99 missing -> dash
    assert "0.50" in cells


def test_render_says_where_and_how_it_was_measured() -> None:
    text = render(_result())
    assert "2 cores" in text and "/venv/bin/python" in text and "optimised build: True" in text
    assert "a stub" in text
    assert "| vpc_flow |" in text
    assert "note: something to know" in text
    json.dumps(_result())  # what --json writes must be plain JSON


# --- command line and /proc -------------------------------------------------------------------------------------


def test_bench_command_line() -> None:
    args = build_parser().parse_args(["bench", "--quick", "--types", "alb", "--json", "out.json"])
    opts = Options.from_args(args)
    assert (opts.types, opts.mb, opts.object_mb, opts.runs, opts.json_path) == (["alb"], 8.0, 2.0, 1, "out.json")
    assert opts.compress and opts.latency_objects == 4 and opts.min_ratio is None
    full = Options.from_args(build_parser().parse_args(["bench", "--runs", "3", "--no-compress", "--min-ratio", "0.5"]))
    assert (full.types, full.mb, full.object_mb, full.runs) == (list(BENCH_TYPES), 64.0, 8.0, 3)
    assert not full.compress and full.min_ratio == 0.5


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")
def test_proc_readings_of_this_process() -> None:
    assert cpu_seconds(os.getpid()) > 0
    assert status_bytes(os.getpid(), "VmHWM") > 1 << 20
    assert cpu_seconds(2**22 + 12345) == 0.0


def test_bench_aws_and_small_objects_options() -> None:
    quick = Options.from_args(build_parser().parse_args(["bench", "--quick"]))
    assert (quick.aws, quick.small_objects, quick.small_kb, quick.small_type) == ("moto", 200, 20.0, "alb")
    assert Options.from_args(build_parser().parse_args(["bench"])).small_objects == 1000
    opts = Options.from_args(build_parser().parse_args(
        ["bench", "--aws", "stub", "--small-objects", "0", "--small-kb", "8", "--small-type", "vpc_flow"]))
    assert (opts.aws, opts.small_objects, opts.small_kb, opts.small_type) == ("stub", 0, 8.0, "vpc_flow")


def test_render_shows_the_small_objects_phase() -> None:
    result = _result()
    assert "Small objects" not in render(result)
    run = {"objects_s": 210.4, "cpu_ms_per_object": 3.8, "cpu_use": 0.8, "aws_stub_cpu_use": 0.1,
           "stub_cpu_use": 0.07, "requests_ReceiveMessage": 0.12, "requests_DeleteMessageBatch": 0.1,
           "bulk_requests_per_object": 0.25, "peak_rss_mb": 99.0}
    result["small_objects"] = {"log_type": "alb", "objects": 1000, "kb": 20.0, "documents": 33_933,
                               "aws": "the AWS stub", **run, "runs": [run, run]}
    text = render(result)
    assert "Small objects: 1,000 alb objects of ~20 KB (33,933 documents)" in text
    assert "| 210 | 3.80 | 0.80 | 0.10 | 0.07 | 0.12 | 0.10 | 0.25 | 99 |" in text
    assert "Per run: 210 objects/s at 3.80 ms" in text
    json.dumps(result)


def test_worker_config_overrides() -> None:
    from worker.bench.runner import BenchError, apply_override

    args = build_parser().parse_args(["bench", "--worker-config", "sources.bench.max_in_flight=2",
                                      "--worker-config", "opensearch.bulk.max_docs=500"])
    opts = Options.from_args(args)
    assert opts.worker_overrides == ["sources.bench.max_in_flight=2", "opensearch.bulk.max_docs=500"]
    cfg: dict[str, Any] = {"sources": {"bench": {"type": "sqs_s3"}}, "opensearch": {"hosts": ["x"]}}
    for item in opts.worker_overrides:
        apply_override(cfg, item)
    assert cfg == {"sources": {"bench": {"type": "sqs_s3", "max_in_flight": 2}},
                   "opensearch": {"hosts": ["x"], "bulk": {"max_docs": 500}}}
    with pytest.raises(BenchError):
        apply_override(cfg, "no-equals-sign")
    with pytest.raises(BenchError):
        apply_override(cfg, "sources.bench.type.deeper=1")


def test_scaling_table_shows_each_process() -> None:
    result = _result()
    result["summary"]["vpc_flow"].update({"scaling_processes": 2, "scaling_mb_s": 9.0, "scaling": 1.71,
                                          "scaling_cpu_use": 1.8, "scaling_peak_rss_mb": 170.0,
                                          "scaling_cpu_use_per_process": [0.91, 0.89]})
    text = render(result)
    assert "| vpc_flow | 5.2 | 9.0 | 1.71x | 1.71x | 1.80 | 0.91 / 0.89 | 170 |" in text
    # A baseline run with the scaling runs' settings, and the ratio against the default-settings median as well.
    result["summary"]["vpc_flow"].update({"scaling_base_mb_s": 5.3, "scaling": 1.70, "scaling_vs_median": 1.71})
    assert "| vpc_flow | 5.3 | 9.0 | 1.70x | 1.71x |" in render(result)


def test_scaling_phase_spreads_few_objects_over_the_processes() -> None:
    from worker.bench.runner import scaling_in_flight

    assert scaling_in_flight(8, 2, []) == 2  # with the default 10, one process would take all 8
    assert scaling_in_flight(3, 2, []) == 1
    assert scaling_in_flight(64, 2, []) is None  # the default leaves work for both
    assert scaling_in_flight(8, 2, ["sources.bench.max_in_flight=4"]) is None  # the user's choice stands
    result = _result()
    result["summary"]["vpc_flow"].update({"scaling_processes": 2, "scaling_mb_s": 9.0, "scaling": 1.71,
                                          "scaling_cpu_use": 1.8, "scaling_peak_rss_mb": 170.0,
                                          "scaling_max_in_flight": 2})
    assert "`sources.bench.max_in_flight` (vpc_flow 2)" in render(result)
