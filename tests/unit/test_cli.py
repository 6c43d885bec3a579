"""The `sluice` command line: parse (same decoding, framing and parsers as the worker) and check-config."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from tests.corpus import ALLOWED_TYPES, CORPUS, load_expected, raw_inputs
from tests.unit.test_corpus_conformance import SCOPES, _elastic_flat, values_agree
from worker.__main__ import main
from worker.parsers import get_parser, log_types
from worker.parsers._fields import flatten


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


BY_ORIGINAL = [s for s in SCOPES if s.pair_by == "event.original"]


@pytest.mark.parametrize("scope", BY_ORIGINAL, ids=[s.log_type for s in BY_ORIGINAL])
def test_parse_output_matches_elastic(scope, capsys: pytest.CaptureFixture[str]) -> None:
    """`sluice parse` on the inputs behind Elastic's expected files agrees with them on shared fields."""
    options = [f"-o{k}={v}" for k, v in scope.options]
    compared = agreed = 0
    date_fields = {n for n, k in get_parser(scope.log_type).fields.items() if k == "date"} | {"@timestamp"}
    for expected_name in scope.expected:
        path = CORPUS / scope.folder / expected_name.removesuffix("-expected.json")
        _, docs, _ = _run(capsys, "parse", "--keep-original", "--type", scope.log_type, *options, str(path))
        ours = {d["event"]["original"]: flatten(d) for d in docs}
        for theirs in load_expected(f"{scope.folder}/{expected_name}"):
            mine = ours.get(theirs["event"]["original"])
            if mine is None:
                continue  # expected file generated from an older input; the parser test pairs those
            for key, value in _elastic_flat(scope.log_type, theirs).items():
                if key in mine:
                    compared += 1
                    agreed += values_agree(mine[key], value, key in date_fields)
    rate = agreed / compared if compared else 0.0
    print(f"\nsluice parse vs Elastic, {scope.log_type}: {agreed}/{compared} fields agree ({rate:.1%})")
    assert compared > 20 and rate >= 0.95


def test_parse_autodetects_and_reads_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = CORPUS / "elb" / "clo_alb.log.gz"
    code, docs, err = _run(capsys, "parse", str(src))
    lines = [ln for ln in gzip.decompress(src.read_bytes()).decode().splitlines() if ln.strip()]
    assert code == 0, err
    assert len(docs) == len(lines) and all(d["@timestamp"] for d in docs)
    ct = CORPUS / "cloudtrail" / "awsdocs_cloudtrail-log-file-examples_block9.json"
    code, docs, err = _run(capsys, "parse", str(ct))
    assert code == 0 and len(docs) == 2, err


@pytest.mark.parametrize("log_type", log_types())
def test_parse_works_for_every_type(log_type: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sluice parse --type T FILE` on the type's documented example record."""
    cls = get_parser(log_type)
    f = tmp_path / "example.log"
    f.write_text(cls.example + "\n")
    code, docs, err = _run(capsys, "parse", "--type", log_type, str(f))
    assert code == 0, err
    assert docs and all(isinstance(d, dict) and d for d in docs)
    assert f"{f}: {log_type}: {len(docs)} documents" in err


def _one_file_per_folder() -> list[str]:
    seen: dict[str, str] = {}
    for relative in raw_inputs():
        folder = relative.split("/", 1)[0]
        if "digest" not in relative:
            seen.setdefault(folder, relative)
    return sorted(seen.values())


@pytest.mark.parametrize("relative", _one_file_per_folder())
def test_parse_detects_the_type_from_content(relative: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Without --type and with a name that says nothing, the content decides."""
    f = tmp_path / "upload.bin"
    f.write_bytes((CORPUS / relative).read_bytes())
    _, docs, err = _run(capsys, "parse", str(f))
    summary = re.search(rf"^{re.escape(str(f))}: (\w+): \d+ documents", err, re.MULTILINE)
    assert summary, err
    assert summary.group(1) in ALLOWED_TYPES[relative.split("/", 1)[0]], err
    assert docs or "failures" in err


def test_parse_reports_failures_with_line_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = (CORPUS / "vpcflow" / "elastic-integrations_test-extra-samples.log").read_text().splitlines()
    f = tmp_path / "flows.log"
    f.write_text("\n".join([good[0], "garbage line here", *good[1:]]) + "\n")
    code, docs, err = _run(capsys, "parse", "--type", "vpc_flow", str(f))
    assert code == 1
    assert f"{f}:2:" in err and "garbage" in err
    assert len(docs) == len(good)


def test_parse_unknown_content_asks_for_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello\n")
    code, _, err = _run(capsys, "parse", str(f))
    assert code == 1 and "--type" in err


def test_check_config_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("opensearch: {hosts: [http://x]}\ndead_letters: {bucket: b, replay_queue_url: q}\n"
                   "sources: {ct: {type: sqs_s3}}\n")
    assert main(["check-config", str(bad)]) == 2
    assert "sources.ct.queue_url: field required" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(bad.read_text().replace("{type: sqs_s3}", "{type: sqs_s3, queue_url: http://q}"))
    assert main(["check-config", str(good)]) == 0
