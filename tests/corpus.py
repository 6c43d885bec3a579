"""Where the shared sample corpus lives, and how tests read it.

The corpus is checked out next to this repository (`../shared/corpus`) in the workspace, and somewhere else in
CI; `SLUICE_CORPUS` overrides the location so the same tests run in both.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS: Path = Path(os.environ.get("SLUICE_CORPUS") or REPO_ROOT.parent / "shared" / "corpus").resolve()


def corpus_file(relative: str) -> Path:
    """The path of a corpus file; fails the test (not a skip) when it is missing, so a broken checkout shows."""
    path = CORPUS / relative
    if not path.is_file():
        raise FileNotFoundError(f"corpus file missing: {path} (set SLUICE_CORPUS to the corpus directory)")
    return path


def read_text(relative: str) -> str:
    """A corpus file's text; `.gz` files are inflated."""
    path = corpus_file(relative)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def read_lines(relative: str) -> list[str]:
    """The lines of a corpus file without `\n` / `\r\n` (an empty last line is not a line).

    Not `str.splitlines`: it also splits on form feeds and Unicode separators, which can occur inside a
    record (a user agent), and the framer does not.
    """
    lines = [line.removesuffix("\r") for line in read_text(relative).split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_json_records(relative: str) -> list[dict[str, Any]]:
    """CloudTrail-style input: a `{"Records": [...]}` document, a JSON array, or one JSON object per line."""
    text = read_text(relative)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(whole, dict) and isinstance(whole.get("Records"), list):
        return list(whole["Records"])
    if isinstance(whole, list):
        return whole
    return [whole]


def load_expected(relative: str) -> list[dict[str, Any]]:
    """The documents of an Elastic `*-expected.json` file, without the nulls (lines the pipeline dropped)."""
    data = json.loads(read_text(relative))
    return [doc for doc in data["expected"] if doc is not None]


def expected_files(folder: str) -> Iterator[Path]:
    """The Elastic expected-output files of one corpus folder."""
    yield from sorted((CORPUS / folder).glob("elastic-integrations_*-expected.json"))
