"""`sluice replay`: re-drive dead letters. (Being written.)"""

from __future__ import annotations

import argparse

from worker.config import Config


def run_replay(cfg: Config, args: argparse.Namespace) -> int:
    raise NotImplementedError("sluice replay is not written yet")
