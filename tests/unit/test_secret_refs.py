"""`${secretsmanager:...}` references: the syntax, and resolution with a stand-in for Secrets Manager (the real
thing against the moto server is in tests/integration/test_secret_refs.py)."""

from __future__ import annotations

import pytest

from worker.config import ConfigError, parse_config, redacted
from worker.secret_refs import SecretRef, SecretRefError, find_refs, parse_ref, resolve_secret_refs

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:opensearch-AbCdEf"


@pytest.mark.parametrize(("body", "secret_id", "key", "region"), [
    (ARN, ARN, None, "eu-west-1"),
    (f"{ARN}:password", ARN, "password", "eu-west-1"),
    (f"{ARN}:a:b", ARN, "a:b", "eu-west-1"),                       # a key may hold colons: all after the ARN
    ("arn:aws-cn:secretsmanager:cn-north-1:1:secret:x", "arn:aws-cn:secretsmanager:cn-north-1:1:secret:x", None,
     "cn-north-1"),
    ("opensearch/prod", "opensearch/prod", None, None),
    ("opensearch/prod:password", "opensearch/prod", "password", None),
    ("  name_+=.@-1:k  ", "name_+=.@-1", "k", None),
])
def test_reference_syntax(body: str, secret_id: str, key: str | None, region: str | None) -> None:
    ref = parse_ref(body)
    assert (ref.secret_id, ref.json_key, ref.region) == (secret_id, key, region)


@pytest.mark.parametrize("body", [
    "", "arn:aws:s3:::bucket", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret", "bad name with spaces", "a#b",
])
def test_malformed_references_are_refused(body: str) -> None:
    with pytest.raises(SecretRefError):
        parse_ref(body)


def test_references_are_found_inside_longer_values() -> None:
    refs = find_refs("https://${secretsmanager:db:user}:${secretsmanager:db:password}@host ${NOT_A_REF}")
    assert refs == [SecretRef("db", "user"), SecretRef("db", "password")]


def _config(**auth: object) -> dict[str, object]:
    return {
        "opensearch": {"hosts": ["https://search.example.com"], "auth": {"type": "basic", **auth}},
        "dead_letters": {"bucket": "backup", "replay_queue_url": "https://sqs/replay"},
        "sources": {"s": {"type": "sqs_s3", "queue_url": "https://sqs/q"}},
    }


class FakeSecrets:
    """Secrets by id; counts calls, so fetching a secret once per load is checked."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.calls: list[str] = []

    def __call__(self, ref: SecretRef) -> str:
        self.calls.append(ref.secret_id)
        if ref.secret_id not in self.secrets:
            raise SecretRefError(f"reading secret {ref.secret_id}: ResourceNotFoundException")
        return self.secrets[ref.secret_id]


def test_json_keys_and_whole_secrets_are_substituted_and_each_secret_is_fetched_once() -> None:
    fake = FakeSecrets({ARN: '{"username": "svc", "password": "s3cr3t!", "port": 9200}', "plain": "tok"})
    tree = _config(username=f"${{secretsmanager:{ARN}:username}}", password=f"${{secretsmanager:{ARN}:password}}")
    tree["opensearch"]["hosts"] = ["https://h:${secretsmanager:" + ARN + ":port}/${secretsmanager:plain}"]  # type: ignore[index]
    errors: list[str] = []
    out = resolve_secret_refs(tree, errors, fetch=fake)
    assert errors == []
    assert out["opensearch"]["auth"] == {"type": "basic", "username": "svc", "password": "s3cr3t!"}
    assert out["opensearch"]["hosts"] == ["https://h:9200/tok"]
    assert sorted(fake.calls) == [ARN, "plain"]


def test_a_tree_without_references_makes_no_call() -> None:
    def fail(ref: SecretRef) -> str:
        raise AssertionError("no call expected")

    tree = _config(username="u", password="${NOT_EXPANDED_HERE}")
    assert resolve_secret_refs(tree, [], fetch=fail) is tree


def test_errors_name_the_path_and_the_secret_but_never_the_value() -> None:
    fake = FakeSecrets({ARN: '{"password": "s3cr3t!"}', "notjson": "s3cr3t!"})
    tree = _config(username="${secretsmanager:missing}", password=f"${{secretsmanager:{ARN}:nokey}}")
    tree["opensearch"]["ca_certs"] = "${secretsmanager:notjson:k}"  # type: ignore[index]
    tree["opensearch"]["index"] = "${secretsmanager:arn:aws:s3:::b}"  # type: ignore[index]
    errors: list[str] = []
    resolve_secret_refs(tree, errors, fetch=fake)
    assert errors == [
        "opensearch.auth.username: reading secret missing: ResourceNotFoundException",
        f"opensearch.auth.password: secret {ARN} has no key 'nokey'",
        "opensearch.ca_certs: secret notjson is not JSON, so it has no key 'k'",
        "opensearch.index: 'arn:aws:s3:::b' is not a Secrets Manager secret ARN "
        "(arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)",
    ]
    assert not any("s3cr3t" in e for e in errors)


def test_parse_config_resolves_after_env_expansion_and_redacts(monkeypatch: pytest.MonkeyPatch) -> None:
    """`${VAR}` first (so a reference may be built from the environment), then the secret; --show masks it."""
    import worker.secret_refs as secret_refs

    fake = FakeSecrets({ARN: '{"password": "s3cr3t!"}'})
    monkeypatch.setattr(secret_refs, "botocore_fetcher", lambda aws: fake)
    cfg = parse_config(_config(username="u", password="${secretsmanager:${OS_SECRET}:password}"),
                       env={"OS_SECRET": ARN})
    assert cfg.opensearch.auth.password == "s3cr3t!"
    assert redacted(cfg)["opensearch"]["auth"]["password"] == "***"
    assert "s3cr3t" not in repr(redacted(cfg))

    with pytest.raises(ConfigError) as err:
        parse_config(_config(username="u", password="${secretsmanager:other}"), env={})
    assert str(err.value) == "opensearch.auth.password: reading secret other: ResourceNotFoundException"
