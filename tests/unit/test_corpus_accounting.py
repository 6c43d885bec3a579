"""Every record of every corpus sample becomes a document or a reported failure: nothing is dropped silently.

Each file goes the way the worker takes it: routed by the S3 key AWS would give it (or by content for
services without the AWSLogs layout), decompressed, framed and parsed by the stream parser (continuation
joins, reroutes to sibling types, CloudWatch Logs expansion). Then the records are counted: framed records =
documents + failures + declared non-events + lines joined into a record, and every declared non-event is
checked to really be one (a header, a blank line, a digest, a control message).
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.corpus import ALLOWED_TYPES, account, is_non_event, raw_inputs


@pytest.mark.parametrize("relative", raw_inputs())
def test_every_record_is_a_document_or_a_reported_failure(relative: str) -> None:
    result = account(relative)
    if result["skip"]:
        assert "digest" in relative, f"{relative} skipped as {result['skip']}"
        return
    folder = relative.split("/", 1)[0]
    assert result["log_type"] in ALLOWED_TYPES[folder], result["log_type"]
    types = {doc_type for _o, _s, doc_type, _d in result["docs"]} | {f[2] for f in result["failures"]}
    assert types <= ALLOWED_TYPES[folder] | ({"cloudtrail", "lambda", "rds_mysql", "generic"}
                                             if result["expands"] else set()), types
    assert result["framing_errors"] == 0
    for failure in result["failures"]:
        assert failure[3], f"failure without a reason: {failure}"
    if result["expands"]:
        assert len(result["docs"]) + len(result["failures"]) == result["events"]
    else:
        counted = len(result["docs"]) + len(result["failures"]) + result["skipped"] + result["joined"]
        assert counted == result["frames"], f"{result['frames'] - counted} records vanished"
    for _offset, record in result["skipped_records"]:
        assert is_non_event(record), f"an event was dropped as a non-event: {str(record)[:200]!r}"


def test_print_corpus_accounting() -> None:
    """The table for the closing note: run with `-s`."""
    total: Counter[str] = Counter()
    print(f"\n{'file':<72} {'type':<16} {'docs':>5} {'fail':>5} {'skip':>5} {'join':>5}")
    for relative in raw_inputs():
        r = account(relative)
        if r["skip"]:
            print(f"{relative:<72} skipped: {r['skip']}")
            total["skipped objects"] += 1
            continue
        print(f"{relative:<72} {r['log_type']:<16} {len(r['docs']):>5} {len(r['failures']):>5} {r['skipped']:>5} "
              f"{r['joined']:>5}")
        for offset, raw, log_type, reason in r["failures"]:
            print(f"    failure @{offset} [{log_type}] {reason}: {str(raw)[:100]!r}")
        total["documents"] += len(r["docs"])
        total["failures"] += len(r["failures"])
    print(dict(total))
    assert total["documents"] > 0
