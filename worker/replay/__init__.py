"""Re-driving dead letters: `sluice replay` (one-off) and the `type: replay` source (continuous).

One module per concern:
- `plan`: what one dead-letter record or pointer becomes (pure rules: re-submit, re-parse, park, leave);
- `engine`: the `Replayer`, shared by the command and the source (records in, settled or parked);
- `objects`: whole-object pointers, re-ingested through `ObjectIngester.ingest_copy` under the original origin;
- `reparse`, `originals`: today's parser on a kept record, read and dated as its source read the original;
- `existing`: which ids OpenSearch already holds; `rate`: the rate limit; `poison`: what replay gives up on;
- `counts`: what a replay did; `pointers`: the replay queue; `options`, `report`, `command`: the CLI.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.config import Config


def run_replay(cfg: Config, args: argparse.Namespace) -> int:
    """The `sluice replay` command (`worker.replay.command`), imported on use: the worker's `type: replay`
    source imports the engine modules of this package, and has no use for the CLI (nor for `worker.app`)."""
    from worker.replay.command import run_replay as run

    return run(cfg, args)
