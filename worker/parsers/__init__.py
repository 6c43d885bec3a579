"""Log-type parsers and their registry. Add a log type by adding a module and one line in `_MODULES`."""

from __future__ import annotations

import importlib

from worker.parsers.base import (
    Emitted,
    Failed,
    FieldType,
    Framing,
    LogParser,
    ParseContext,
    ParseError,
    Reroute,
)

__all__ = [
    "Emitted", "Failed", "FieldType", "Framing", "LogParser", "ParseContext", "ParseError", "Reroute",
    "get_parser", "log_types", "sniff_order",
]

# Order matters only for content sniffing: stricter, more specific formats come first, `generic` last.
_MODULES: dict[str, str] = {
    "cloudwatch_logs": "worker.parsers.cloudwatch_logs",
    "cloudtrail": "worker.parsers.cloudtrail",
    "aws_config": "worker.parsers.aws_config",
    "waf": "worker.parsers.waf",
    "network_firewall": "worker.parsers.network_firewall",
    "route53_resolver": "worker.parsers.route53_resolver",
    "cloudfront": "worker.parsers.cloudfront",
    "alb": "worker.parsers.alb",
    "nlb": "worker.parsers.nlb",
    "elb": "worker.parsers.elb",
    "s3_access": "worker.parsers.s3_access",
    "vpc_flow": "worker.parsers.vpc_flow",
    "route53_public": "worker.parsers.route53_public",
    "lambda": "worker.parsers.lambda_logs",
    "rds_postgresql": "worker.parsers.rds_postgresql",
    "rds_mysql": "worker.parsers.rds_mysql",
    "cloudfront_realtime": "worker.parsers.cloudfront_realtime",
    "generic": "worker.parsers.generic",
}
_cache: dict[str, type[LogParser]] = {}


def log_types() -> list[str]:
    return sorted(_MODULES)


def sniff_order() -> list[str]:
    """Log types in the order content sniffing tries them."""
    return list(_MODULES)


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
