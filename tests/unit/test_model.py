import asyncio

from worker.model import AckSet, Origin, Outcome


async def test_ackset_done_only_when_sealed_and_settled() -> None:
    ack = AckSet("u")
    ack.add(2)
    ack.settle(Outcome.DELIVERED)
    ack.settle(Outcome.DEAD_LETTERED)
    waiter = asyncio.ensure_future(ack.wait())
    await asyncio.sleep(0)
    assert not waiter.done()  # not sealed: more documents may come
    ack.seal()
    assert await waiter is True


async def test_ackset_retry_fails_unit() -> None:
    ack = AckSet("u")
    ack.add(2)
    ack.settle(Outcome.RETRY)
    ack.seal()
    ack.settle(Outcome.DELIVERED)
    assert await ack.wait() is False
    assert ack.counts[Outcome.RETRY] == 1


async def test_empty_sealed_unit_is_done() -> None:
    ack = AckSet("u")
    ack.seal()
    assert await ack.wait() is True


def test_ids_are_stable_and_version_sensitive() -> None:
    a = Origin("s", "s3", "b", "k", "etag:1")
    assert a.id_prefix() == Origin("other", "s3", "b", "k", "etag:1").id_prefix()
    assert a.id_prefix() != Origin("s", "s3", "b", "k", "etag:2").id_prefix()
    assert len(a.id_prefix()) == 20


async def test_on_seal_runs_once_at_seal_or_at_once_when_already_sealed() -> None:
    ack = AckSet("u")
    calls: list[str] = []
    ack.on_seal(lambda: calls.append("first"))
    ack.on_seal(lambda: calls.append("second"))
    assert calls == []
    ack.seal()
    assert calls == ["first", "second"]
    ack.seal()
    assert calls == ["first", "second"]
    ack.on_seal(lambda: calls.append("late"))
    assert calls == ["first", "second", "late"]
