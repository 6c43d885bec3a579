"""A minimal `_bulk` endpoint for benchmarks: accepts every item, so the worker, not the engine, is measured.

The stub now lives in the package (`worker/bench/stub.py`), so that `sluice bench` works where Sluice is
installed; this script keeps the old way of starting it: `python bench/bulk_stub.py --port 9200`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.bench.stub import main, make_app

__all__ = ["main", "make_app"]

if __name__ == "__main__":
    sys.exit(main())
