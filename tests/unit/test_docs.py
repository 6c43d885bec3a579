"""Every config key and every metric is documented: a knob nobody can find does not exist."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic import BaseModel

import worker.telemetry  # noqa: F401  (declares the metrics)
from worker.config import Config, KinesisSource, ReplaySource, SqsS3Source, SqsSource, parse_config

DOCS = Path(__file__).parents[2] / "docs"


def _keys(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        ann: Any = field.annotation
        models = [a for a in (ann, *getattr(ann, "__args__", ())) if isinstance(a, type) and issubclass(a, BaseModel)]
        if models:
            out += _keys(models[0], path + ".")
    return out


def test_configuration_reference_is_generated_from_the_code() -> None:
    from worker.docgen import render

    assert (DOCS / "configuration.md").read_text() == render(), "run: python -m worker.docgen"


def test_every_config_key_is_in_the_reference() -> None:
    text = (DOCS / "configuration.md").read_text()
    keys = [k for k in _keys(Config, "") if not k.startswith("sources")]
    keys += [f"sources.<name>.{k}" for model in (SqsS3Source, SqsSource, KinesisSource, ReplaySource)
             for k in _keys(model, "")]
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing, f"undocumented config keys: {missing}"


def test_metrics_reference_is_generated_and_complete() -> None:
    from worker.docgen import render_metrics

    text = (DOCS / "metrics.md").read_text()
    assert text == render_metrics(), "run: python -m worker.docgen"
    for metric in REGISTRY.collect():
        if metric.name.startswith("sluice_"):
            assert metric.documentation, metric.name
            assert f"`{metric.name}" in text


def test_log_types_page_is_generated_from_the_parsers() -> None:
    from worker.log_type_docs import render_log_types
    from worker.parsers import get_parser, log_types

    text = (DOCS / "log-types.md").read_text()
    assert text == render_log_types(), "run: python -m worker.docgen"
    for log_type in log_types():
        cls = get_parser(log_type)
        assert f"## `{log_type}`" in text
        assert cls.routing, f"{log_type}: no routing sentence"
        assert cls.example or log_type == "cloudfront_realtime", f"{log_type}: no example record"


@pytest.mark.parametrize("page", ["processing.md", "kinesis.md"])
def test_yaml_examples_in_the_docs_are_valid_sources(page: str) -> None:
    """Every ```yaml block of the page, as the `sources` of an otherwise minimal config, passes validation."""
    text = (DOCS / page).read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert blocks, f"{page} has no YAML example"
    for block in blocks:
        data = yaml.safe_load(block)
        assert set(data) == {"sources"}, block
        parse_config({"opensearch": {"hosts": ["https://search.example.com"]},
                      "dead_letters": {"bucket": "backup", "replay_queue_url": "https://sqs/replay"}, **data})
