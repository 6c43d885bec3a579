"""`type: replay` source. (Being written.)"""

from __future__ import annotations

import asyncio
from typing import Any


class ReplaySourceRunner:
    def __init__(self, name: str, cfg: Any, aws: Any, pipeline: Any, dead_letters: Any, config: Any) -> None:
        self.name = name

    async def run(self, stop: asyncio.Event, drain_deadline: list[float]) -> None:
        raise NotImplementedError("the replay source is not written yet")
