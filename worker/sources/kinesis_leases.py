"""The lease table: which worker reads which shard, and how far each shard has been settled.

One DynamoDB item per shard, keyed `<stream>/<shard id>`:
`owner` (worker id), `token` (a fresh random value per take), `counter` (bumped by every take, renewal and
release), `checkpoint` (a sequence number, a start position such as `TRIM_HORIZON`, or `SHARD_END`) and
`parents` (the shards it was split or merged from).

Every write is conditional, so the table, not any worker's memory, decides who owns a shard:
- a take requires the counter the taker saw, so it loses any race with a renewal or another take;
- a renewal, a checkpoint and a release require the owner's token, so once a lease has been taken from a
  worker, that worker's late checkpoint is refused (`LeaseLost`) instead of moving the position of a shard
  someone else now reads.
Expiry needs no synchronised clocks: a lease is expired when its counter has not changed for
`lease_duration` on the observer's own monotonic clock (the Kinesis Client Library's rule).
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from worker import telemetry as m

log = m.get_logger("sluice.kinesis.leases")

SHARD_END = "SHARD_END"
"""Checkpoint of a closed shard read to its end: its children may now be read."""


class LeaseLost(Exception):
    """The lease was taken by another worker (or released); the caller must stop using it at once."""


@dataclass(slots=True)
class Lease:
    key: str
    shard_id: str
    checkpoint: str
    parents: tuple[str, ...] = ()
    owner: str | None = None
    token: str | None = None
    counter: int = 0

    @property
    def finished(self) -> bool:
        return self.checkpoint == SHARD_END


@dataclass(slots=True)
class _Seen:
    counter: int
    since: float


@dataclass(slots=True)
class ExpiryClock:
    """Remembers when each lease's counter last changed, on this worker's monotonic clock."""

    lease_duration: float
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def observe(self, leases: list[Lease], now: float) -> None:
        keys = set()
        for lease in leases:
            keys.add(lease.key)
            seen = self._seen.get(lease.key)
            if seen is None or seen.counter != lease.counter:
                self._seen[lease.key] = _Seen(lease.counter, now)
        for gone in set(self._seen) - keys:
            del self._seen[gone]

    def expired(self, lease: Lease, now: float) -> bool:
        """Owned, but not renewed for a whole lease duration; a free lease is not "expired", just free."""
        if lease.owner is None:
            return False
        seen = self._seen.get(lease.key)
        return seen is not None and now - seen.since >= self.lease_duration


def plan_takes(leases: list[Lease], held: set[str], worker_id: str, expired: Callable[[Lease], bool]) -> list[Lease]:
    """The leases a worker should claim now: free or expired ones up to its share, else one stolen to balance.

    Only eligible leases count: not finished, and every parent finished (or gone), so a child shard waits for
    its parents. Live workers are the owners of unexpired eligible leases, plus this one; the share is
    `ceil(eligible / live workers)`. Stealing happens only when nothing is free, at most one lease per round,
    from the most loaded worker, and only when that makes the fleet more even: the victim holds more than
    the share, or exactly the share while this worker is short by more than one (so 2-1-1 over 4 shards is
    stable, and 2-2-0 becomes 2-1-1).
    """
    by_shard = {lease.shard_id: lease for lease in leases}
    eligible = [lease for lease in leases if not lease.finished and parents_done(lease, by_shard)]
    mine = sum(1 for lease in eligible if lease.key in held)
    others: Counter[str] = Counter(
        lease.owner for lease in eligible if lease.owner and lease.owner != worker_id and not expired(lease))
    target = math.ceil(len(eligible) / (len(others) + 1)) if eligible else 0
    need = target - mine
    if need <= 0:
        return []
    available = [lease for lease in eligible if lease.key not in held and (
        lease.owner is None or lease.owner == worker_id or expired(lease))]
    random.shuffle(available)
    available.sort(key=lambda lease: lease.owner is not None)  # free ones first, then expired
    if available:
        return available[:need]
    if not others:
        return []
    victim, load = others.most_common(1)[0]
    if load > target or (load == target and need > 1):
        return [random.choice([lease for lease in eligible if lease.owner == victim])]
    return []


def parents_done(lease: Lease, by_shard: dict[str, Lease]) -> bool:
    """Every parent read to its end (or no longer listed: trimmed from the stream long ago)."""
    for parent in lease.parents:
        parent_lease = by_shard.get(parent)
        if parent_lease is not None and not parent_lease.finished:
            return False
    return True


def _conditional_failed(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


_NAMES = {"#o": "owner", "#t": "token", "#c": "counter", "#cp": "checkpoint"}


class LeaseTable:
    """Conditional reads and writes of one stream's leases in a shared table."""

    def __init__(self, dynamodb: Any, table: str, stream: str) -> None:
        self.ddb = dynamodb
        self.table = table
        self.stream = stream

    def key_of(self, shard_id: str) -> str:
        return f"{self.stream}/{shard_id}"

    async def ensure_table(self, timeout: float = 120.0) -> None:
        """Create the table (on-demand capacity) unless it exists; wait until it is ACTIVE.

        Several workers starting together may all try: the losers get ResourceInUse and just wait.
        """
        try:
            desc = await self.ddb.describe_table(TableName=self.table)
            status = desc["Table"]["TableStatus"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            try:
                await self.ddb.create_table(
                    TableName=self.table, BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "lease_key", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "lease_key", "KeyType": "HASH"}],
                )
                log.info("lease_table_created", table=self.table)
            except ClientError as create_exc:
                if create_exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                    raise
            status = "CREATING"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while status != "ACTIVE":
            if loop.time() > deadline:
                raise TimeoutError(f"lease table {self.table} is not ACTIVE after {timeout:.0f} s ({status})")
            await asyncio.sleep(0.5)
            status = (await self.ddb.describe_table(TableName=self.table))["Table"]["TableStatus"]

    async def list(self) -> list[Lease]:
        """Every lease of this stream, read consistently (decisions about ownership need the latest counters)."""
        leases: list[Lease] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "FilterExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "stream"},
            "ExpressionAttributeValues": {":s": {"S": self.stream}},
        }
        while True:
            resp = await self.ddb.scan(**kwargs)
            leases.extend(_from_item(item) for item in resp.get("Items", []))
            last = resp.get("LastEvaluatedKey")
            if not last:
                return leases
            kwargs["ExclusiveStartKey"] = last

    async def create(self, shard_id: str, parents: tuple[str, ...], checkpoint: str) -> bool:
        """Add a free lease for a newly seen shard; False when some worker already added it."""
        item: dict[str, Any] = {
            "lease_key": {"S": self.key_of(shard_id)}, "stream": {"S": self.stream},
            "shard_id": {"S": shard_id}, "counter": {"N": "0"}, "checkpoint": {"S": checkpoint},
            "parents": {"L": [{"S": p} for p in parents]},
        }
        try:
            await self.ddb.put_item(TableName=self.table, Item=item,
                                    ConditionExpression="attribute_not_exists(lease_key)")
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    async def take(self, lease: Lease, owner: str) -> Lease | None:
        """Own `lease` if nobody changed it since it was read (same counter); None when the race was lost."""
        token = secrets.token_hex(8)
        try:
            resp = await self.ddb.update_item(
                TableName=self.table, Key={"lease_key": {"S": lease.key}},
                UpdateExpression="SET #o = :o, #t = :t, #c = #c + :one",
                ConditionExpression="#c = :c",
                ExpressionAttributeNames={"#o": "owner", "#t": "token", "#c": "counter"},
                ExpressionAttributeValues={":o": {"S": owner}, ":t": {"S": token}, ":one": {"N": "1"},
                                           ":c": {"N": str(lease.counter)}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return _from_item(resp["Attributes"])

    async def renew(self, lease: Lease) -> None:
        """Show the fleet this worker is alive and still reading the shard; LeaseLost if it no longer owns it."""
        resp = await self._owned_update(lease, "SET #c = #c + :one", {":one": {"N": "1"}}, "UPDATED_NEW")
        lease.counter = int(resp["Attributes"]["counter"]["N"])

    async def checkpoint(self, lease: Lease, position: str) -> None:
        """Record that everything up to `position` is settled; refused (LeaseLost) once the lease was taken."""
        await self._owned_update(lease, "SET #cp = :cp", {":cp": {"S": position}}, "NONE")
        lease.checkpoint = position

    async def release(self, lease: Lease) -> None:
        """Give the lease up (shutdown, shard end) so another worker can take it without waiting for expiry."""
        resp = await self._owned_update(lease, "REMOVE #o, #t SET #c = #c + :one", {":one": {"N": "1"}},
                                        "UPDATED_NEW")
        lease.counter = int(resp["Attributes"]["counter"]["N"])
        lease.owner = lease.token = None

    async def _owned_update(self, lease: Lease, expression: str, values: dict[str, Any],
                            returns: str) -> dict[str, Any]:
        if lease.token is None:
            raise LeaseLost(f"{lease.key}: not owned by this worker")
        used = set(re.findall(r"#\w+", expression)) | {"#t"}
        names = {k: v for k, v in _NAMES.items() if k in used}
        try:
            resp: dict[str, Any] = await self.ddb.update_item(
                TableName=self.table, Key={"lease_key": {"S": lease.key}}, UpdateExpression=expression,
                ConditionExpression="#t = :token", ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":token": {"S": lease.token}}, ReturnValues=returns,
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise LeaseLost(f"{lease.key}: taken by another worker") from None
            raise
        return resp


def _from_item(item: dict[str, Any]) -> Lease:
    def s(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value else None

    return Lease(
        key=item["lease_key"]["S"],
        shard_id=item["shard_id"]["S"],
        checkpoint=s("checkpoint") or "",
        parents=tuple(p["S"] for p in item.get("parents", {}).get("L", [])),
        owner=s("owner"),
        token=s("token"),
        counter=int(item.get("counter", {}).get("N", "0")),
    )
