"""Index templates built from the parsers' own field declarations (one source of truth for types).

Strings a parser does not declare map to `keyword` (not text + keyword): log fields are filtered and
aggregated far more than full-text searched, and a double mapping doubles the index size.
"""

from __future__ import annotations

from typing import Any

from worker.config import OpenSearchConfig
from worker.enrich import FIELDS as ENRICHMENT_FIELDS
from worker.parsers import FieldType, get_parser, log_types

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


def index_pattern_for(cfg: OpenSearchConfig, log_type: str) -> str:
    """The wildcard matching every index of a log type under the configured name pattern."""
    pattern = cfg.index.replace("{log_type}", log_type)
    for token in ("{yyyy}", "{MM}", "{dd}"):
        pattern = pattern.replace(token, "*")
    while "**" in pattern:
        pattern = pattern.replace("**", "*")
    return pattern


def index_templates(cfg: OpenSearchConfig) -> dict[str, dict[str, Any]]:
    """One composable index template per log type."""
    out = {}
    for log_type in log_types():
        fields = {**COMMON_FIELDS, **get_parser(log_type).fields}
        out[f"sluice-{log_type}"] = {
            "index_patterns": [index_pattern_for(cfg, log_type)],
            "priority": 200,
            "template": {
                "settings": {
                    "number_of_shards": cfg.number_of_shards,
                    "number_of_replicas": cfg.number_of_replicas,
                    "refresh_interval": "5s",
                },
                "mappings": {
                    "dynamic_templates": [
                        {"strings_as_keyword": {"match_mapping_type": "string",
                                                "mapping": {"type": "keyword", "ignore_above": 1024}}},
                    ],
                    "properties": field_mapping(fields),
                },
            },
            "_meta": {"managed_by": "sluice", "log_type": log_type},
        }
    return out
