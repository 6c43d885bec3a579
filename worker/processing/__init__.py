"""Per-source event processing: include/exclude, multiline, JSON events, list expansion, tags and fields.

Pure code (no I/O, no asyncio), so the pipeline can run it inline on a decoded chunk and the tests can run it
without servers. `Processor` is the one entry point the pipeline needs; the pieces are public for tests and
for callers that only want one of them.
"""

from worker.processing.filters import EventFilter
from worker.processing.json_events import expand_event_list, split_json
from worker.processing.multiline import Multiline
from worker.processing.processor import Processor

__all__ = ["EventFilter", "Multiline", "Processor", "expand_event_list", "split_json"]
