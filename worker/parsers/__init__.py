"""Log-type parsers and their registry. Add a log type by adding a module and one line in `_MODULES`."""

from __future__ import annotations

import importlib

from worker.parsers.base import FieldType, Framing, LogParser, ParseContext, ParseError

__all__ = ["FieldType", "Framing", "LogParser", "ParseContext", "ParseError", "get_parser", "log_types"]

_MODULES: dict[str, str] = {
    "vpc_flow": "worker.parsers.vpc_flow",
    "alb": "worker.parsers.alb",
    "cloudtrail": "worker.parsers.cloudtrail",
}
_cache: dict[str, type[LogParser]] = {}


def log_types() -> list[str]:
    return sorted(_MODULES)


def get_parser(log_type: str) -> type[LogParser]:
    """The parser class for a log type; KeyError names the known types."""
    cls = _cache.get(log_type)
    if cls is not None:
        return cls
    module_name = _MODULES.get(log_type)
    if module_name is None:
        raise KeyError(f"unknown log type {log_type!r}; known: {', '.join(log_types())}")
    module = importlib.import_module(module_name)
    cls = module.PARSER
    if not (isinstance(cls, type) and issubclass(cls, LogParser)):
        raise RuntimeError(f"{module_name}.PARSER is not a LogParser subclass")
    if cls.log_type != log_type:
        raise RuntimeError(f"{module_name}.PARSER has log_type {cls.log_type!r}, expected {log_type!r}")
    _cache[log_type] = cls
    return cls
