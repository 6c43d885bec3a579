"""AIMD arithmetic and the resizable gate of adaptive bulk concurrency (no servers: pure logic and asyncio)."""

from __future__ import annotations

import asyncio

import pytest

from worker.sinks.concurrency import AdaptiveConcurrency, AimdController, ConcurrencyGate


def _window(c: AimdController, latency: float, *, saturated: bool = True) -> bool:
    """One full window of successful requests at the current limit; True if the limit grew."""
    epoch = c.started(c.limit if saturated else c.limit - 1)
    grew = False
    for _ in range(c.limit):
        grew = c.succeeded(epoch, latency) or grew
    return grew


def test_starts_at_min_and_grows_by_one_per_steady_window_up_to_max() -> None:
    c = AimdController(1, 5)
    assert c.limit == 1
    trace = [c.limit]
    for _ in range(10):
        _window(c, 0.1)
        trace.append(c.limit)
    assert trace == [1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5]


def test_window_is_as_long_as_the_limit() -> None:
    c = AimdController(1, 8, initial=4)
    epoch = c.started(4)
    assert [c.succeeded(epoch, 0.1) for _ in range(4)] == [False, False, False, True]
    assert c.limit == 5


def test_no_growth_when_the_limit_was_never_reached() -> None:
    """An idle sink learns nothing about the cluster: the limit stays where it is."""
    c = AimdController(1, 8, initial=3)
    for _ in range(5):
        assert not _window(c, 0.1, saturated=False)
    assert c.limit == 3


def test_halves_on_throttle_and_never_goes_below_min() -> None:
    c = AimdController(2, 16, initial=16)
    trace = []
    for _ in range(5):
        c.throttled(c.started(1))
        trace.append(c.limit)
    assert trace == [8, 4, 2, 2, 2]


def test_one_burst_of_rejections_halves_once() -> None:
    """Eight requests in flight together all get 429: one congestion event, not eight halvings."""
    c = AimdController(1, 8, initial=8)
    epochs = [c.started(i + 1) for i in range(8)]
    changes = [c.throttled(e) for e in epochs]
    assert changes == [True] + [False] * 7
    assert c.limit == 4
    # A request sent after the decrease that is throttled again halves again.
    assert c.throttled(c.started(1))
    assert c.limit == 2


def test_successes_sent_before_a_decrease_do_not_count_towards_growth() -> None:
    c = AimdController(1, 8, initial=8)
    old = c.started(8)
    c.throttled(c.started(8))
    assert c.limit == 4
    for _ in range(20):
        assert not c.succeeded(old, 0.1)
    assert c.limit == 4


def test_rising_latency_holds_growth_and_steady_latency_resumes_it() -> None:
    c = AimdController(1, 20, initial=4)
    for _ in range(3):
        _window(c, 0.10)
    assert c.limit == 7
    assert not _window(c, 0.50)  # five times the baseline: the cluster is queueing
    assert c.limit == 7
    baseline = c.baseline
    assert baseline is not None and 0.1 < baseline < 0.5
    # Once the higher latency is the new normal, growth resumes.
    grew = [_window(c, 0.50) for _ in range(6)]
    assert any(grew)


def test_jitter_within_tolerance_does_not_stop_growth() -> None:
    c = AimdController(1, 10, initial=1)
    latencies = [0.100, 0.105, 0.098, 0.108, 0.101, 0.104, 0.099, 0.107, 0.102]
    for lat in latencies:
        assert _window(c, lat)
    assert c.limit == 10


def test_fixed_limit_when_min_equals_max() -> None:
    c = AimdController(4, 4)
    c.throttled(c.started(4))
    _window(c, 0.1)
    assert c.limit == 4


@pytest.mark.parametrize(("lo", "hi"), [(0, 4), (5, 4)])
def test_rejects_impossible_bounds(lo: int, hi: int) -> None:
    with pytest.raises(ValueError):
        AimdController(lo, hi)


# --- the gate ------------------------------------------------------------------------------------------


async def test_gate_holds_to_its_limit_and_lets_waiters_in_when_raised() -> None:
    gate = ConcurrencyGate(2)
    assert await gate.acquire() == 1
    assert await gate.acquire() == 2
    third = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    assert not third.done() and gate.waiting == 1
    gate.limit = 3
    assert await asyncio.wait_for(third, 1) == 3
    assert gate.in_flight == 3


async def test_gate_lowered_limit_takes_effect_as_holders_leave() -> None:
    gate = ConcurrencyGate(4)
    for _ in range(4):
        await gate.acquire()
    gate.limit = 2
    waiter = asyncio.create_task(gate.acquire())
    gate.release()
    gate.release()
    await asyncio.sleep(0.01)
    assert not waiter.done(), "in flight must drop below the new limit before anyone else gets in"
    gate.release()
    assert await asyncio.wait_for(waiter, 1) == 2


async def test_gate_is_first_come_first_served() -> None:
    gate = ConcurrencyGate(1)
    await gate.acquire()
    order: list[int] = []

    async def take(i: int) -> None:
        await gate.acquire()
        order.append(i)
        gate.release()

    tasks = [asyncio.create_task(take(i)) for i in range(5)]
    await asyncio.sleep(0.01)
    gate.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert gate.in_flight == 0


async def test_cancelled_waiter_does_not_leak_a_place() -> None:
    gate = ConcurrencyGate(1)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    other = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    gate.release()  # hands the place to `waiter`...
    waiter.cancel()  # ...which is cancelled before it runs: the place must go on to `other`
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await asyncio.wait_for(other, 1) == 1
    gate.release()
    assert gate.in_flight == 0


async def test_adaptive_concurrency_limits_real_tasks_and_reports_changes() -> None:
    """Twenty requests through an AIMD gate: in flight never exceeds the limit in force at the time, the
    limit grows while all is well and halves on a throttle."""
    changes: list[tuple[int, str]] = []
    ac = AdaptiveConcurrency(AimdController(1, 6), lambda limit, why: changes.append((limit, why)))
    peak_over_limit = 0
    in_flight = 0

    async def request(i: int) -> None:
        nonlocal in_flight, peak_over_limit
        async with ac.slot() as slot:
            in_flight += 1
            peak_over_limit = max(peak_over_limit, in_flight - ac.gate.limit)
            await asyncio.sleep(0.005)
            in_flight -= 1
            if i == 30:
                slot.throttled("request_429")
            else:
                slot.succeeded(0.005)

    await asyncio.gather(*(request(i) for i in range(30)))
    grown = ac.limit
    assert grown >= 4 and changes[-1] == (grown, "steady")
    await request(30)
    assert ac.limit == grown // 2 and changes[-1] == (grown // 2, "request_429")
    assert peak_over_limit <= 0
    assert ac.gate.in_flight == 0
