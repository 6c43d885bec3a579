"""Lease balancing, expiry and the settled prefix of a shard: the pure decisions of the Kinesis source."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from worker.model import AckSet, Outcome
from worker.sources.kinesis_checkpoints import ShardProgress
from worker.sources.kinesis_leases import SHARD_END, ExpiryClock, Lease, parents_done, plan_takes


def lease(shard: int, owner: str | None = None, counter: int = 1, checkpoint: str = "TRIM_HORIZON",
          parents: tuple[str, ...] = ()) -> Lease:
    shard_id = f"shardId-{shard:012d}"
    return Lease(f"s/{shard_id}", shard_id, checkpoint, parents, owner, "tok" if owner else None, counter)


def never(_: Lease) -> bool:
    return False


def test_first_worker_takes_every_free_lease() -> None:
    leases = [lease(i) for i in range(4)]
    assert len(plan_takes(leases, set(), "a", never)) == 4


def test_owned_leases_are_not_taken_while_alive() -> None:
    leases = [lease(0, "b"), lease(1, "b"), lease(2), lease(3)]
    plan = plan_takes(leases, set(), "a", never)
    assert sorted(x.shard_id for x in plan) == [leases[2].shard_id, leases[3].shard_id]


def test_expired_leases_are_taken_up_to_the_share() -> None:
    leases = [lease(i, "dead") for i in range(4)] + [lease(4, "b"), lease(5, "b")]
    dead = {x.key for x in leases if x.owner == "dead"}
    plan = plan_takes(leases, set(), "a", lambda x: x.key in dead)
    # Live workers: b and a -> share 3 of 6.
    assert len(plan) == 3 and all(x.key in dead for x in plan)


def simulate(workers: list[str], leases: list[Lease], rounds: int = 20) -> dict[str, int]:
    """Each round every worker plans and takes (as the table would allow); the loads at the end."""
    rng = random.Random(5)
    for _ in range(rounds):
        for w in rng.sample(workers, len(workers)):
            held = {x.key for x in leases if x.owner == w}
            for chosen in plan_takes(leases, held, w, never):
                chosen.owner = w
    loads = {w: 0 for w in workers}
    for x in leases:
        if x.owner is not None:
            loads[x.owner] += 1
    return loads


@pytest.mark.parametrize(("workers", "shards"), [(1, 4), (2, 4), (3, 4), (3, 5), (4, 4), (2, 7), (5, 3)])
def test_a_fleet_converges_to_an_even_spread(workers: int, shards: int) -> None:
    names = [f"w{i}" for i in range(workers)]
    leases = [lease(i) for i in range(shards)]
    # The first worker starts alone and takes everything; the others join later.
    for chosen in plan_takes(leases, set(), names[0], never):
        chosen.owner = names[0]
    loads = simulate(names, leases)
    assert sum(loads.values()) == shards
    assert max(loads.values()) <= math.ceil(shards / workers)
    assert max(loads.values()) - min(loads.values()) <= 1


def test_steals_at_most_one_lease_a_round_from_the_most_loaded() -> None:
    leases = [lease(i, "b") for i in range(4)] + [lease(4, "c")]
    plan = plan_takes(leases, set(), "a", never)
    assert len(plan) == 1 and plan[0].owner == "b"


def test_two_one_one_is_stable() -> None:
    leases = [lease(0, "a"), lease(1, "a"), lease(2, "b"), lease(3, "c")]
    for me in ("a", "b", "c"):
        assert plan_takes(leases, {x.key for x in leases if x.owner == me}, me, never) == []


def test_a_child_is_eligible_only_after_its_parents_end() -> None:
    parent = lease(0, "b", checkpoint="4960")
    children = [lease(1, parents=(parent.shard_id,)), lease(2, parents=(parent.shard_id,))]
    assert plan_takes([parent, *children], set(), "a", never) == []
    parent.checkpoint = SHARD_END
    assert len(plan_takes([parent, *children], set(), "a", never)) == 2
    # A merge: both parents must end.
    other = lease(3, checkpoint="17")
    merged = lease(4, parents=(parent.shard_id, other.shard_id))
    by_shard = {x.shard_id: x for x in (parent, other, merged)}
    assert not parents_done(merged, by_shard)
    other.checkpoint = SHARD_END
    assert parents_done(merged, by_shard)
    # A parent no longer in the table (trimmed) does not hold its children back.
    assert parents_done(lease(9, parents=("shardId-gone",)), {})


def test_expiry_is_measured_on_the_observers_clock() -> None:
    clock = ExpiryClock(10.0)
    x = lease(0, "b", counter=5)
    clock.observe([x], now=100.0)
    assert not clock.expired(x, 109.9)
    assert clock.expired(x, 110.0)
    x.counter = 6  # renewed: the wait starts again
    clock.observe([x], now=110.0)
    assert not clock.expired(x, 119.0)
    free = lease(1)
    clock.observe([free], now=0.0)
    assert not clock.expired(free, 1000.0)


async def _ack(outcome: Outcome | None) -> AckSet:
    ack = AckSet("t")
    ack.add(1)
    ack.seal()
    if outcome is not None:
        ack.settle(outcome)
    return ack


async def test_checkpoint_moves_over_the_settled_prefix_only() -> None:
    progress = ShardProgress()
    first, second, third = AckSet("1"), AckSet("2"), AckSet("3")
    for ack in (first, second, third):
        ack.add(1)
        ack.seal()
    progress.add("9", first)
    progress.add("10", second)  # longer, yet later: compared as integers
    progress.add("11", third)
    second.settle(Outcome.DELIVERED)
    assert not progress.advance() and progress.settled is None
    first.settle(Outcome.DEAD_LETTERED)  # dead-lettered counts as settled
    assert progress.advance() and progress.settled == "10"
    third.settle(Outcome.RETRY)
    progress.advance()
    assert progress.failed and progress.settled == "10"
    assert progress.rewind() == "10" and progress.pending == 0 and not progress.failed


async def test_batches_must_come_in_sequence_order() -> None:
    progress = ShardProgress(settled="100")
    with pytest.raises(ValueError, match="after"):
        progress.add("99", await _ack(None))
    progress.add("101", await _ack(Outcome.DELIVERED))
    with pytest.raises(ValueError, match="after"):
        progress.add("101", await _ack(None))


async def test_wait_all_ends_at_a_failure() -> None:
    progress = ShardProgress()
    progress.add("1", await _ack(Outcome.DELIVERED))
    progress.add("2", await _ack(Outcome.RETRY))
    pending = AckSet("never")
    pending.add(1)
    progress.add("3", pending)
    await asyncio.wait_for(progress.wait_all(), 1)
    assert progress.failed and progress.settled == "1"
