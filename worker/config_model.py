"""The base of every configuration model, in a module of its own so that component modules (e.g. the index
lifecycle settings in worker/sinks/lifecycle.py) can declare their config sections without importing
worker/config.py, which imports them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    """Unknown keys are errors, values are immutable, attribute docstrings become field descriptions (and the
    generated configuration reference)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
