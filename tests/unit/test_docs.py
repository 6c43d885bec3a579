"""Every config key and every metric is documented: a knob nobody can find does not exist."""

from pathlib import Path
from typing import Any

from pydantic import BaseModel
from prometheus_client import REGISTRY

import worker.telemetry  # noqa: F401  (declares the metrics)
from worker.config import Config, SqsS3Source

DOCS = Path(__file__).parents[2] / "docs"


def _keys(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        ann: Any = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _keys(ann, path + ".")
    return out


def test_every_config_key_is_in_the_reference() -> None:
    text = (DOCS / "configuration.md").read_text()
    keys = [k for k in _keys(Config, "") if not k.startswith("sources")]
    keys += [f"sources.<name>.{k}" for k in _keys(SqsS3Source, "")]
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing, f"undocumented config keys: {missing}"


def test_every_metric_is_documented_with_help() -> None:
    text = (DOCS / "operations.md").read_text()
    names = [m.name for m in REGISTRY.collect() if m.name.startswith("sluice_")]
    assert names
    for metric in REGISTRY.collect():
        if metric.name.startswith("sluice_"):
            assert metric.documentation, metric.name
    missing = [n for n in names if n not in text]
    assert not missing, f"metrics missing from docs/operations.md: {missing}"
