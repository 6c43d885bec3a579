"""AWS Secrets Manager references in config values: `${secretsmanager:<secret>[:<json key>]}`.

Why: a password must not sit in the config file (a ConfigMap, a task definition, a repository), and not every
platform can inject it as an environment variable. A reference names the secret instead; the worker reads it
once, when the config is loaded, with its own credentials (environment, task or pod role, `aws.role_arn`).

    password: ${secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:opensearch-AbCdEf:password}
    password: ${secretsmanager:opensearch/prod}          # a name: the secret in `aws.region`, whole

`<secret>` is a full ARN (its region is used) or a name; `<json key>` picks one top-level key of a secret whose
value is a JSON object (ESF's `arn:...:secret:name:key` form). The endpoint is `aws.endpoint_url` (LocalStack,
moto) or botocore's own `AWS_ENDPOINT_URL_SECRETS_MANAGER`. Values are never logged nor put in an error
message; `check-config --show` masks them under the secret-named keys (`password`, `token`, ...).

Loading is synchronous (botocore, not aiobotocore): it happens once, before the event loop starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

PREFIX = "secretsmanager:"
_REF_RE = re.compile(r"\$\{secretsmanager:([^}]*)\}")
_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]+$")


class SecretRefError(ValueError):
    """A reference that is malformed or cannot be resolved; the message never contains a secret value."""


@dataclass(frozen=True, slots=True)
class SecretRef:
    """One parsed reference."""

    secret_id: str
    """A secret name or a full ARN, as GetSecretValue takes it."""
    json_key: str | None = None
    """Top-level key of a JSON secret; None: the whole secret string."""

    @property
    def region(self) -> str | None:
        """The region an ARN names (None for a name: the worker's `aws.region` then)."""
        return (self.secret_id.split(":")[3] or None) if self.secret_id.startswith("arn:") else None

    def __str__(self) -> str:
        return self.secret_id + (f":{self.json_key}" if self.json_key else "")


def parse_ref(body: str) -> SecretRef:
    """`<secret>[:<json key>]` (what is between `${secretsmanager:` and `}`) into a SecretRef.

    An ARN has seven colon-separated parts (`arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`),
    so anything after the seventh colon-separated part is the JSON key; a name cannot contain a colon.
    """
    body = body.strip()
    if not body:
        raise SecretRefError("empty Secrets Manager reference; expected ${secretsmanager:<name or ARN>[:<key>]}")
    if body.startswith("arn:"):
        parts = body.split(":")
        if len(parts) < 7 or parts[2] != "secretsmanager" or parts[5] != "secret" or not parts[6]:
            raise SecretRefError(f"{body!r} is not a Secrets Manager secret ARN "
                                 "(arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)")
        secret_id, key = ":".join(parts[:7]), ":".join(parts[7:])
    else:
        secret_id, _, key = body.partition(":")
        if not _NAME_RE.match(secret_id):
            raise SecretRefError(f"{secret_id!r} is not a valid secret name")
    return SecretRef(secret_id, key or None)


def find_refs(text: str) -> list[SecretRef]:
    """Every reference in a string, in order (raises SecretRefError for a malformed one)."""
    return [parse_ref(m.group(1)) for m in _REF_RE.finditer(text)]


Fetch = Callable[[SecretRef], str]
"""Returns the secret's string value for a reference (its json_key is applied by the caller)."""


def extract(ref: SecretRef, secret: str) -> str:
    """The part of a secret's value the reference asks for."""
    if ref.json_key is None:
        return secret
    try:
        doc = orjson.loads(secret)
    except orjson.JSONDecodeError:
        raise SecretRefError(f"secret {ref.secret_id} is not JSON, so it has no key {ref.json_key!r}") from None
    if not isinstance(doc, dict) or ref.json_key not in doc:
        raise SecretRefError(f"secret {ref.secret_id} has no key {ref.json_key!r}")
    value = doc[ref.json_key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SecretRefError(f"key {ref.json_key!r} of secret {ref.secret_id} is not a string or a number")
    return str(value)


def _has_refs(value: Any) -> bool:
    if isinstance(value, str):
        return PREFIX in value and _REF_RE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_refs(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_refs(v) for v in value)
    return False


def resolve_secret_refs(tree: Any, errors: list[str], fetch: Fetch | None = None) -> Any:
    """The config tree with every reference replaced by its value; problems are appended to `errors` by path.

    A tree without references costs one walk and no AWS call. Each secret is fetched once, however many
    keys of it are referenced. `fetch` replaces Secrets Manager (tests); by default a botocore client built
    from the tree's own `aws` section is used.
    """
    if not _has_refs(tree):
        return tree
    if fetch is None:
        fetch = botocore_fetcher(tree.get("aws") if isinstance(tree, dict) else None)
    cache: dict[str, str | SecretRefError] = {}

    def value_of(ref: SecretRef) -> str:
        secret = cache.get(ref.secret_id)
        if secret is None:
            try:
                secret = fetch(ref)
            except SecretRefError as exc:
                secret = exc
            cache[ref.secret_id] = secret
        if isinstance(secret, SecretRefError):
            raise secret
        return extract(ref, secret)

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            if PREFIX not in value:
                return value

            def sub(m: re.Match[str]) -> str:
                try:
                    return value_of(parse_ref(m.group(1)))
                except SecretRefError as exc:
                    errors.append(f"{path or '<root>'}: {exc}")
                    return ""
            return _REF_RE.sub(sub, value)
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return walk(tree, "")


def botocore_fetcher(aws: Any) -> Fetch:
    """GetSecretValue with the worker's AWS settings (region, `endpoint_url`, `role_arn`) from the raw `aws`
    section; an invalid section falls back to the defaults (config validation reports it anyway)."""
    from pydantic import ValidationError

    from worker.config import AwsConfig

    try:
        cfg = AwsConfig.model_validate(aws or {})
    except ValidationError:
        cfg = AwsConfig()
    clients: dict[str, Any] = {}

    def client(region: str) -> Any:
        if region not in clients:
            clients[region] = _client(cfg, region)
        return clients[region]

    def fetch(ref: SecretRef) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = client(ref.region or cfg.region).get_secret_value(SecretId=ref.secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SecretRefError(f"reading secret {ref.secret_id}: {code}") from None
        except BotoCoreError as exc:
            raise SecretRefError(f"reading secret {ref.secret_id}: {type(exc).__name__}: {exc}") from None
        if resp.get("SecretString") is not None:
            return str(resp["SecretString"])
        binary = resp.get("SecretBinary")
        try:
            return bytes(binary).decode()
        except (TypeError, UnicodeDecodeError):
            raise SecretRefError(f"secret {ref.secret_id} has neither a string nor a UTF-8 binary value") from None

    return fetch


def _client(cfg: Any, region: str) -> Any:
    """A secretsmanager client for `region`, as the worker's assumed role when `aws.role_arn` is set."""
    import botocore.session
    from botocore.config import Config as BotoConfig

    session = botocore.session.get_session()
    boto_cfg = BotoConfig(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=15)
    creds: dict[str, str] = {}
    if cfg.role_arn:
        sts = session.create_client("sts", region_name=cfg.region, endpoint_url=cfg.endpoint_for("sts"),
                                    config=boto_cfg)
        c = sts.assume_role(RoleArn=cfg.role_arn, RoleSessionName="sluice-config")["Credentials"]
        creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                 "aws_session_token": c["SessionToken"]}
    return session.create_client("secretsmanager", region_name=region, endpoint_url=cfg.endpoint_url,
                                 config=boto_cfg, **creds)
