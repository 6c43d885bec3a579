"""The AWS context objects documents carry besides their own fields: `cloud.*` and `aws.cloudwatch.*`.

Every parser writes `cloud` the same way (provider `aws`, then the service, account and region it knows, in
that key order), from the record itself (`aws_cloud`) or from the stream context (`cloud_builder`), so it is
built here. Documents must not share these objects (later stages add to them, e.g. the CloudWatch Logs
envelope adds `event_id`), so every call returns fresh ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.parsers.base import ParseContext


def aws_cloud(account: str, region: str, service: str = "") -> dict[str, Any]:
    """A fresh `cloud` object: `provider: aws`, then `service.name`, `account.id`, `region` when known."""
    cloud: dict[str, Any] = {"provider": "aws", "service": {"name": service}} if service else {"provider": "aws"}
    if account:
        cloud["account"] = {"id": account}
    if region:
        cloud["region"] = region
    return cloud


def cloud_builder(account: str, region: str, service: str = "") -> Callable[[], dict[str, Any]]:
    """`aws_cloud` for a stream whose account and region do not change (they come from its context): what the
    object holds is decided once, and each call only builds a fresh copy of it, as cheaply as writing it inline
    (which the fastest line parsers, at a few µs a line, would notice): a flat object is a template's `copy`,
    one with nested objects a literal.
    """
    if not account and not service:
        template: dict[str, Any] = {"provider": "aws", "region": region} if region else {"provider": "aws"}
        return template.copy
    if not service:
        if region:
            return lambda: {"provider": "aws", "account": {"id": account}, "region": region}
        return lambda: {"provider": "aws", "account": {"id": account}}
    if account and region:
        return lambda: {"provider": "aws", "service": {"name": service}, "account": {"id": account}, "region": region}
    if account:
        return lambda: {"provider": "aws", "service": {"name": service}, "account": {"id": account}}
    if region:
        return lambda: {"provider": "aws", "service": {"name": service}, "region": region}
    return lambda: {"provider": "aws", "service": {"name": service}}


def cloudwatch_origin(ctx: ParseContext) -> dict[str, str]:
    """`aws.cloudwatch.log_group` / `log_stream` of a stream, as far as the context knows them ({} if not).

    Computed once per stream; give each document its own `.copy()`.
    """
    out: dict[str, str] = {}
    if ctx.log_group:
        out["log_group"] = ctx.log_group
    if ctx.log_stream:
        out["log_stream"] = ctx.log_stream
    return out
