"""Adaptive bulk concurrency: how many bulk requests may be in flight now, and a gate that holds to it.

Why: a fixed number of concurrent bulk requests is wrong both ways. Too many, and an overloaded cluster is
hammered with requests it can only reject (429 `es_rejected_execution_exception`), which makes its queues
worse; too few, and a healthy cluster sits idle. So the limit follows AIMD, as TCP congestion control and
Vector's adaptive request concurrency do:

- additive increase: after a window of successful requests (as many as the current limit, i.e. about one
  round trip of them), one more is allowed, if the limit was actually reached during the window (an idle
  sink learns nothing about the cluster) and the window's mean latency is not rising above the moving
  baseline (beyond its usual noise);
- multiplicative decrease: a 429 or 503 (for the request or for any of its items) or a timeout halves the
  limit, never below the minimum. Requests sent before the last decrease cannot lower the limit again: a
  burst of rejections of requests that were all in flight together is one congestion signal, not many.

`AimdController` is the pure arithmetic (no clock, no I/O: unit-tested on its own); `ConcurrencyGate` is the
asyncio gate whose capacity can change while requests wait; `AdaptiveConcurrency` joins them for the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable


class AimdController:
    """The limit on concurrent requests, raised by one after a good window and halved on throttling."""

    def __init__(self, min_limit: int, max_limit: int, *, initial: int | None = None,
                 decrease_factor: float = 0.5, ewma_alpha: float = 0.3, deviation_scale: float = 2.5,
                 tolerance: float = 0.1) -> None:
        """`initial` defaults to `min_limit`: a fleet restarting against an overloaded cluster starts gently.

        A window's mean latency counts as rising when it exceeds the baseline (an exponentially weighted
        moving average of window means, weight `ewma_alpha`) by more than `tolerance` of it plus
        `deviation_scale` times the moving mean absolute deviation, so ordinary jitter does not stop growth.
        """
        if min_limit < 1 or max_limit < min_limit:
            raise ValueError(f"need 1 <= min_limit <= max_limit, got {min_limit}..{max_limit}")
        if not 0 < decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.decrease_factor = decrease_factor
        self.ewma_alpha = ewma_alpha
        self.deviation_scale = deviation_scale
        self.tolerance = tolerance
        self._limit = max(min_limit, min(max_limit, initial if initial is not None else min_limit))
        self._epoch = 0
        self._baseline: float | None = None
        self._deviation = 0.0
        self._window_count = 0
        self._window_sum = 0.0
        self._saturated = False

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def baseline(self) -> float | None:
        """Moving average of window mean latencies (seconds), None before the first full window."""
        return self._baseline

    def started(self, in_flight: int) -> int:
        """A request starts and `in_flight` requests (itself included) are now in flight. Returns the epoch
        to report its outcome with."""
        if in_flight >= self._limit:
            self._saturated = True
        return self._epoch

    def succeeded(self, epoch: int, latency: float) -> bool:
        """A request of `epoch` was answered without throttling after `latency` seconds; True if the limit
        grew."""
        if epoch != self._epoch:
            return False  # sent under the limit before the last decrease: it says nothing about this one
        self._window_count += 1
        self._window_sum += latency
        if self._window_count < self._limit:
            return False
        mean = self._window_sum / self._window_count
        rising = False
        if self._baseline is None:
            self._baseline = mean
        else:
            rising = mean > self._baseline * (1 + self.tolerance) + self.deviation_scale * self._deviation
            a = self.ewma_alpha
            self._deviation = (1 - a) * self._deviation + a * abs(mean - self._baseline)
            self._baseline = (1 - a) * self._baseline + a * mean
        grow = self._saturated and not rising and self._limit < self.max_limit
        self._reset_window()
        if grow:
            self._limit += 1
        return grow

    def throttled(self, epoch: int) -> bool:
        """A request of `epoch` was pushed back on (429, 503, timeout); True if the limit shrank."""
        if epoch != self._epoch:
            return False  # this congestion was already answered by the decrease since it was sent
        self._epoch += 1
        self._reset_window()
        new = max(self.min_limit, int(self._limit * self.decrease_factor))
        changed = new != self._limit
        self._limit = new
        return changed

    def _reset_window(self) -> None:
        self._window_count = 0
        self._window_sum = 0.0
        self._saturated = False


class ConcurrencyGate:
    """At most `limit` holders at once, where `limit` may change at any time: raising it lets waiters in at
    once, lowering it takes effect as holders leave (nobody in flight is interrupted)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._limit = value
        self._wake()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> int:
        """Wait for a place (first come, first served); returns how many are in flight with this one."""
        if self._in_flight >= self._limit or self.waiting:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._in_flight -= 1  # the place was handed over just as we were cancelled: pass it on
                    self._wake()
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(fut)
                raise
        else:
            self._in_flight += 1
        return self._in_flight

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        # The place is counted when it is handed over, so a woken waiter cannot be overtaken.
        while self._waiters and self._in_flight < self._limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self._in_flight += 1
                fut.set_result(None)


class AdaptiveConcurrency:
    """The gate driven by the controller: `async with concurrency.slot() as slot:` around one request, then
    `slot.succeeded(latency)` or `slot.throttled()`; `on_change(limit)` hears every new limit."""

    def __init__(self, controller: AimdController, on_change: Callable[[int, str], None] | None = None) -> None:
        self.controller = controller
        self.gate = ConcurrencyGate(controller.limit)
        self._on_change = on_change

    @property
    def limit(self) -> int:
        return self.controller.limit

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        in_flight = await self.gate.acquire()
        try:
            yield Slot(self, self.controller.started(in_flight))
        finally:
            self.gate.release()

    def _changed(self, reason: str) -> None:
        self.gate.limit = self.controller.limit
        if self._on_change is not None:
            self._on_change(self.controller.limit, reason)


class Slot:
    """One request's place in flight; report its outcome once."""

    __slots__ = ("_concurrency", "_epoch")

    def __init__(self, concurrency: AdaptiveConcurrency, epoch: int) -> None:
        self._concurrency = concurrency
        self._epoch = epoch

    def succeeded(self, latency: float) -> None:
        if self._concurrency.controller.succeeded(self._epoch, latency):
            self._concurrency._changed("steady")

    def throttled(self, kind: str) -> None:
        if self._concurrency.controller.throttled(self._epoch):
            self._concurrency._changed(kind)
