"""One aiobotocore session for the process, and clients with endpoint overrides and assumed roles.

Every client goes through `AwsClients.client()`, so the endpoint (LocalStack, moto, a VPC endpoint) and the
credentials (environment, task or pod role, an assumed role) are decided in one place.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import AioSession, get_session

from worker.config import AwsConfig


class AwsClients:
    """Owns the session and the open clients; `async with` closes them all."""

    def __init__(self, cfg: AwsConfig) -> None:
        self.cfg = cfg
        self.session: AioSession = get_session()
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._botocfg = AioConfig(
            region_name=cfg.region,
            max_pool_connections=cfg.max_pool_connections,
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
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
