"""`${secretsmanager:...}` references resolved for real: GetSecretValue against the session's AWS emulator
(moto server or LocalStack), through the endpoint the config itself names, as `sluice check-config` does it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import Boto
from worker.config import ConfigError, load_config, redacted

PASSWORD = "pa55-W0rd:with}braces{and:colons"


def _write(tmp_path: Path, aws: dict[str, object], auth: dict[str, str]) -> Path:
    path = tmp_path / "sluice.yaml"
    path.write_text(yaml.safe_dump({
        "aws": aws,
        "opensearch": {"hosts": ["https://search.example.com"], "auth": {"type": "basic", **auth}},
        "dead_letters": {"bucket": "backup", "replay_queue_url": "https://sqs/replay"},
        "sources": {"s": {"type": "sqs_s3", "queue_url": "https://sqs/q"}},
    }))
    return path


def test_json_key_of_a_secret_by_arn_and_a_whole_secret_by_name(
        boto: Boto, aws_endpoint: str, unique_name: Callable[[str], str], tmp_path: Path) -> None:
    sm = boto.client("secretsmanager")
    json_name, plain_name = unique_name("os-creds"), unique_name("os-user")
    arn = sm.create_secret(Name=json_name, SecretString=f'{{"username": "svc", "password": "{PASSWORD}"}}')["ARN"]
    sm.create_secret(Name=plain_name, SecretString="plain-user")

    path = _write(tmp_path, {"region": boto.region, "endpoint_url": aws_endpoint},
                  {"username": f"${{secretsmanager:{plain_name}}}", "password": f"${{secretsmanager:{arn}:password}}"})
    cfg = load_config(path)
    assert cfg.opensearch.auth.username == "plain-user"
    assert cfg.opensearch.auth.password == PASSWORD
    assert redacted(cfg)["opensearch"]["auth"]["password"] == "***"

    # The command a person runs: the value is used, never shown.
    out = subprocess.run([sys.executable, "-m", "worker", "check-config", "--show", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "password: '***'" in out.stdout
    assert PASSWORD not in out.stdout + out.stderr


def test_a_binary_secret_and_an_assumed_role(
        boto: Boto, aws_endpoint: str, unique_name: Callable[[str], str], tmp_path: Path) -> None:
    """`aws.role_arn` is honoured at load time too (the emulator's STS hands out credentials for any role)."""
    name = unique_name("bin")
    boto.client("secretsmanager").create_secret(Name=name, SecretBinary=PASSWORD.encode())
    path = _write(tmp_path, {"region": boto.region, "endpoint_url": aws_endpoint,
                             "role_arn": "arn:aws:iam::123456789012:role/sluice"},
                  {"username": "u", "password": f"${{secretsmanager:{name}}}"})
    assert load_config(path).opensearch.auth.password == PASSWORD


def test_missing_secret_and_missing_key_are_config_errors_without_values(
        boto: Boto, aws_endpoint: str, unique_name: Callable[[str], str], tmp_path: Path) -> None:
    name = unique_name("partial")
    boto.client("secretsmanager").create_secret(Name=name, SecretString=f'{{"password": "{PASSWORD}"}}')
    missing = unique_name("missing")
    path = _write(tmp_path, {"region": boto.region, "endpoint_url": aws_endpoint},
                  {"username": f"${{secretsmanager:{missing}}}", "password": f"${{secretsmanager:{name}:pw}}"})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert f"opensearch.auth.username: reading secret {missing}: ResourceNotFoundException" in text
    assert f"opensearch.auth.password: secret {name} has no key 'pw'" in text
    assert PASSWORD not in text
