from pathlib import Path

import pytest

from worker.config import ConfigError, load_config, parse_config, redacted

MINIMAL = {
    "opensearch": {"hosts": ["http://127.0.0.1:9200"]},
    "dead_letters": {"bucket": "backup", "replay_queue_url": "http://q/replay"},
    "sources": {"cloudtrail": {"type": "sqs_s3", "queue_url": "http://q/ct"}},
}


def _with(**over: object) -> dict:
    import copy

    data = copy.deepcopy(MINIMAL)
    data.update(over)
    return data


def test_minimal_config_gets_defaults() -> None:
    cfg = parse_config(MINIMAL)
    src = cfg.sources["cloudtrail"]
    assert src.log_type == "auto" and src.wait_time == 20 and src.max_in_flight == 10
    assert cfg.opensearch.bulk.max_bytes == 5 << 20
    assert cfg.opensearch.index == "sluice-{log_type}-{yyyy}.{MM}.{dd}"


def test_missing_field_is_named_by_path() -> None:
    data = _with(sources={"cloudtrail": {"type": "sqs_s3"}})
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert str(err.value) == "sources.cloudtrail.queue_url: field required"


def test_unknown_key_and_wrong_type_are_errors() -> None:
    data = _with(opensearch={"hosts": ["http://x"], "bulk": {"max_bytes": "lots"}, "colour": "blue"})
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    text = str(err.value)
    assert "opensearch.colour: unknown key" in text
    assert "opensearch.bulk.max_bytes:" in text


def test_unknown_log_type_rejected() -> None:
    data = _with(sources={"x": {"type": "sqs_s3", "queue_url": "q", "log_type": "nope"}})
    with pytest.raises(ConfigError, match="unknown log type 'nope'"):
        parse_config(data)


def test_env_expansion_with_default_and_missing() -> None:
    data = _with(opensearch={"hosts": ["${OS_URL}"], "auth": {"type": "basic", "username": "u",
                                                               "password": "${OS_PW:-dflt}"}})
    cfg = parse_config(data, env={"OS_URL": "https://search:443"})
    assert cfg.opensearch.hosts == ["https://search:443"]
    assert cfg.opensearch.auth.password == "dflt"
    with pytest.raises(ConfigError, match=r"opensearch.hosts\[0\]: environment variable OS_URL is not set"):
        parse_config(data, env={})


def test_endpoint_override_per_service() -> None:
    cfg = parse_config(_with(aws={"endpoint_url": "http://all", "endpoints": {"s3": "http://s3only"}}))
    assert cfg.aws.endpoint_for("s3") == "http://s3only"
    assert cfg.aws.endpoint_for("sqs") == "http://all"


def test_redacted_hides_secrets() -> None:
    cfg = parse_config(_with(opensearch={"hosts": ["h"], "auth": {"type": "basic", "username": "u", "password": "pw"}}))
    assert redacted(cfg)["opensearch"]["auth"]["password"] == "***"


def test_bad_index_placeholder() -> None:
    with pytest.raises(ConfigError, match="unknown placeholder"):
        parse_config(_with(opensearch={"hosts": ["h"], "index": "logs-{month}"}))


def test_load_config_reports_yaml_errors(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("sources: [unclosed")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(f)


def test_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "docs" / "examples" / "sluice.yaml"
    cfg = load_config(example, env={"SLUICE_QUEUE_URL": "http://q", "SLUICE_REPLAY_QUEUE_URL": "http://r",
                                    "OPENSEARCH_URL": "http://o", "SLUICE_BACKUP_BUCKET": "b"})
    assert cfg.sources
