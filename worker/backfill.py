"""`sluice backfill`: ingest objects that already exist under an S3 prefix. (Being written.)"""

from __future__ import annotations

import argparse

from worker.config import Config


def run_backfill(cfg: Config, args: argparse.Namespace) -> int:
    raise NotImplementedError("sluice backfill is not written yet")
