"""Index templates built from the parsers' own field declarations (one source of truth for types).

Strings a parser does not declare map to `keyword` (not text + keyword): log fields are filtered and
aggregated far more than full-text searched, and a double mapping doubles the index size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.config import OpenSearchConfig
from worker.enrich import FIELDS as ENRICHMENT_FIELDS
from worker.parsers import FieldType, get_parser, log_types
from worker.sinks.lifecycle import (
    ROLLOVER_ALIAS_SETTING,
    digest,
    index_pattern,
    ism_policy,
    lifecycle_of,
    policy_id,
    write_name,
)

DEFAULT_PRIORITY = 200
SOURCE_PRIORITY = 210

COMMON_FIELDS: dict[str, FieldType] = {
    "@timestamp": "date",
    "message": "text",
    "event.original": "text",
    "event.created": "date",
    "event.start": "date",
    "event.end": "date",
    "event.ingested": "date",
    "event.duration": "long",
    "source.ip": "ip",
    "source.port": "long",
    "source.bytes": "long",
    "source.packets": "long",
    "destination.ip": "ip",
    "destination.port": "long",
    "destination.bytes": "long",
    "destination.packets": "long",
    "client.ip": "ip",
    "client.port": "long",
    "network.bytes": "long",
    "network.packets": "long",
    "http.response.status_code": "long",
    "http.request.body.bytes": "long",
    "http.response.body.bytes": "long",
    "url.port": "long",
    "related.ip": "ip",
    # What any document may carry whatever its parser declares: what every parser sets (`event.kind`,
    # `cloud.provider`), what a CloudWatch Logs subscription or a Kinesis source adds, the source's `tags`.
    # Strings would be mapped as keyword dynamically anyway; the Parquet sink's columns need them declared.
    "event.kind": "keyword",
    "event.category": "keyword",
    "event.type": "keyword",
    "event.outcome": "keyword",
    "cloud.provider": "keyword",
    "cloud.account.id": "keyword",
    "cloud.region": "keyword",
    "related.user": "keyword",
    "related.hosts": "keyword",
    "related.hash": "keyword",
    "tags": "keyword",
    "aws.cloudwatch.log_group": "keyword",
    "aws.cloudwatch.log_stream": "keyword",
    "aws.cloudwatch.event_id": "keyword",
    "aws.kinesis.name": "keyword",
    "aws.kinesis.shard_id": "keyword",
    "aws.kinesis.sequence_number": "keyword",
    "aws.kinesis.partition_key": "keyword",
    "aws.kinesis.subsequence_number": "long",
    # What optional enrichment adds (GeoIP, user agent): mapped whether or not it is on, so turning it on
    # later never meets a dynamically mapped field of the wrong type.
    **ENRICHMENT_FIELDS,
}

_TYPE_MAPPING: dict[str, dict[str, Any]] = {
    "keyword": {"type": "keyword", "ignore_above": 1024},
    "text": {"type": "text"},
    "ip": {"type": "ip"},
    "long": {"type": "long"},
    "integer": {"type": "integer"},
    "short": {"type": "short"},
    "byte": {"type": "byte"},
    "double": {"type": "double"},
    "float": {"type": "float"},
    "boolean": {"type": "boolean"},
    "date": {"type": "date"},
    "object": {"type": "object"},
    "flattened": {"type": "flat_object"},
    "geo_point": {"type": "geo_point"},
}


def field_mapping(fields: dict[str, FieldType]) -> dict[str, Any]:
    """Nested `properties` for dotted field names."""
    root: dict[str, Any] = {}
    for dotted in sorted(fields):
        parts = dotted.split(".")
        node = root
        for part in parts[:-1]:
            entry = node.setdefault(part, {"properties": {}})
            if "properties" not in entry:  # declared as a leaf object earlier: children refine it
                entry.clear()
                entry["properties"] = {}
            node = entry["properties"]
        leaf = parts[-1]
        mapping = dict(_TYPE_MAPPING[fields[dotted]])
        if leaf in node and "properties" in node[leaf]:
            continue  # an object with declared children wins over a leaf declaration
        node[leaf] = mapping
    return root


def index_pattern_for(cfg: OpenSearchConfig, log_type: str, pattern: str | None = None) -> str:
    """What matches every index of a log type under a name pattern (default `opensearch.index`) in the configured
    lifecycle mode: a wildcard over the dates, over a rollover alias's backing indices, or a data stream's name."""
    return index_pattern(pattern or cfg.index, log_type, lifecycle_of(cfg).mode)


@dataclass(frozen=True)
class Target:
    """One log type under one name pattern: what gets an index template (and a place in an ISM template)."""

    log_type: str
    template: str
    """Index template name: `sluice-<log_type>` for `opensearch.index`, `sluice-<log_type>--<source>` for a
    source's own `index` pattern."""
    pattern: str
    index_pattern: str
    write_name: str | None
    """The rollover alias or data stream documents are written to; None for daily indices."""
    priority: int


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-") or "source"


def targets(cfg: OpenSearchConfig, source_indices: Mapping[str, str] | None = None) -> list[Target]:
    """Every (log type, name pattern) the sink may write to: `opensearch.index`, then each source's own `index`.

    Source patterns get a higher template priority than the default one: OpenSearch refuses two templates with
    overlapping patterns at the same priority, and the more specific source pattern should win anyway. Two
    patterns that come to the same index pattern share one template."""
    mode = lifecycle_of(cfg).mode
    own = sorted((s, p) for s, p in (source_indices or {}).items() if p != cfg.index)
    patterns: list[tuple[str | None, str]] = [(None, cfg.index), *own]
    out: list[Target] = []
    for log_type in log_types():
        seen: set[str] = set()
        names: set[str] = set()
        for source, pattern in patterns:
            wildcard = index_pattern(pattern, log_type, mode)
            if wildcard in seen:
                continue
            seen.add(wildcard)
            name = f"sluice-{log_type}" if source is None else f"sluice-{log_type}--{_slug(source)}"
            if name in names:  # two source names that differ only in case or punctuation
                name = f"{name}-{digest(pattern)[:6]}"
            names.add(name)
            out.append(Target(
                log_type=log_type, template=name, pattern=pattern, index_pattern=wildcard,
                write_name=None if mode == "daily" else write_name(pattern, log_type),
                priority=DEFAULT_PRIORITY if source is None else SOURCE_PRIORITY,
            ))
    return out


def index_templates(cfg: OpenSearchConfig, source_indices: Mapping[str, str] | None = None, *,
                    rollover_alias: bool = True) -> dict[str, dict[str, Any]]:
    """One composable index template per log type and name pattern.

    `rollover_alias`: in rollover mode, name the write alias in the `plugins.index_state_management.rollover_alias`
    setting ISM's rollover action reads. Leave it out on a cluster without ISM: OpenSearch refuses settings no
    installed plugin declares. In data stream mode the template carries `data_stream: {}`, which makes the first
    write to the stream's name create it. `_meta.digest` fingerprints the rest of the body, so `sluice setup` can
    tell an older version of our own template (e.g. a setting since removed) from the current one."""
    lc = lifecycle_of(cfg)
    out: dict[str, dict[str, Any]] = {}
    for target in targets(cfg, source_indices):
        fields = {**COMMON_FIELDS, **get_parser(target.log_type).fields}
        settings: dict[str, Any] = {
            "number_of_shards": cfg.number_of_shards,
            "number_of_replicas": cfg.number_of_replicas,
            "refresh_interval": "5s",
        }
        if lc.mode == "rollover" and rollover_alias and target.write_name:
            settings[ROLLOVER_ALIAS_SETTING] = target.write_name
        body: dict[str, Any] = {
            "index_patterns": [target.index_pattern],
            "priority": target.priority,
            "template": {
                "settings": settings,
                "mappings": {
                    "dynamic_templates": [
                        {"strings_as_keyword": {"match_mapping_type": "string",
                                                "mapping": {"type": "keyword", "ignore_above": 1024}}},
                    ],
                    "properties": field_mapping(fields),
                },
            },
            "_meta": {"managed_by": "sluice", "log_type": target.log_type},
        }
        if lc.mode == "data_stream":
            body["data_stream"] = {}
        body["_meta"]["digest"] = digest(body)
        out[target.template] = body
    return out


def ism_policies(cfg: OpenSearchConfig, source_indices: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """One ISM policy per log type (`sluice-<log_type>`), whose `ism_template` covers that log type's indices
    under every name pattern, so each new index (or backing index) is managed from its creation."""
    lc = lifecycle_of(cfg)
    patterns: dict[str, list[str]] = {}
    for target in targets(cfg, source_indices):
        patterns.setdefault(target.log_type, []).append(target.index_pattern)
    return {policy_id(log_type): ism_policy(log_type, lc, pats) for log_type, pats in patterns.items()}
