"""One aiobotocore session for the process, and clients with endpoint overrides and assumed roles.

Every client goes through `AwsClients.client()`, so the endpoint (LocalStack, moto, a VPC endpoint) and the
credentials (environment, task or pod role, an assumed role) are decided in one place.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
from datetime import UTC, datetime
from typing import Any

import aiobotocore
import botocore
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import AioSession, get_session
from botocore.utils import parse_timestamp

from worker.config import AwsConfig

_MONTHS = {name: i for i, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def fast_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, without dateutil for the two text forms AWS sends.

    botocore hands every timestamp string to dateutil (about 0.1 ms each), and GetObject's `Last-Modified`
    header is parsed on every call: a tenth of a small object's cost. HTTP dates (`Mon, 23 Nov 2026 19:32:28
    GMT`) and ISO 8601 in UTC (`2026-11-23T19:32:28.865Z`) are read directly; anything else (epoch numbers,
    other offsets, odd spellings) goes to botocore's own parser, so results never differ but in speed.
    """
    if isinstance(value, str):
        try:
            if value.endswith(" GMT"):
                _, day, month, year, hms, _ = value.split()
                hour, minute, second = hms.split(":")
                return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second),
                                tzinfo=UTC)
            if value.endswith("Z") and "T" in value:
                return datetime.fromisoformat(value)
        except (ValueError, KeyError):
            pass
    result: datetime = parse_timestamp(value)
    return result


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("sluice")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    return (f"sluice/{version} aiobotocore/{aiobotocore.__version__} botocore/{botocore.__version__} "
            f"Python/{platform.python_version()}")


USER_AGENT = _user_agent()
"""A fixed User-Agent. botocore otherwise rebuilds its own (feature ids, platform, config metadata) twice per
request, which cost a quarter of a GetObject's CPU; AWS sees which tool and versions call it either way."""


class AwsClients:
    """Owns the session and the open clients; `async with` closes them all."""

    def __init__(self, cfg: AwsConfig) -> None:
        self.cfg = cfg
        self.session: AioSession = get_session()
        self.session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=fast_timestamp)
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        # Per-call CPU matters with small objects (one GetObject per object): the worker's own calls are fixed
        # code, so botocore's validation of their parameters is dropped (tests exercise every call).
        self._botocfg = AioConfig(
            region_name=cfg.region,
            max_pool_connections=cfg.max_pool_connections,
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            parameter_validation=False,
            user_agent=USER_AGENT,
        )

    async def __aenter__(self) -> AwsClients:
        await self._stack.__aenter__()
        if self.cfg.role_arn:
            await self._assume_role(self.cfg.role_arn)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._clients.clear()
        await self._stack.__aexit__(None, None, None)

    async def client(self, service: str) -> Any:
        """A shared client for `service`, created on first use."""
        existing = self._clients.get(service)
        if existing is not None:
            return existing
        client = await self._stack.enter_async_context(
            self.session.create_client(
                service,
                region_name=self.cfg.region,
                endpoint_url=self.cfg.endpoint_for(service),
                config=self._botocfg,
            )
        )
        self._clients[service] = client
        return client

    async def _assume_role(self, role_arn: str) -> None:
        """Replace the session's credentials with refreshable ones for `role_arn`.

        Refreshable credentials renew themselves before expiry, so a long-running worker never signs a
        request with an expired session token.
        """
        base = get_session()

        async def refresh() -> dict[str, str]:
            async with base.create_client(
                "sts", region_name=self.cfg.region, endpoint_url=self.cfg.endpoint_for("sts")
            ) as sts:
                resp = await sts.assume_role(RoleArn=role_arn, RoleSessionName="sluice")
            c = resp["Credentials"]
            expiry = c["Expiration"]
            if isinstance(expiry, datetime):
                expiry = expiry.astimezone(UTC).isoformat()
            return {
                "access_key": c["AccessKeyId"],
                "secret_key": c["SecretAccessKey"],
                "token": c["SessionToken"],
                "expiry_time": expiry,
            }

        creds = AioRefreshableCredentials.create_from_metadata(
            metadata=await refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        self.session._credentials = creds
