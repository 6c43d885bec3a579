"""CloudFront standard access logs (W3C extended format) -> ECS, with the field names of Elastic's
`aws.cloudfront_logs` pipeline.

Columns are named by the file's `#Fields:` header line (remembered on the parser instance: the header is a
property of the stream); a stream without one gets the documented 33-column layout. Lines of older files
carry only a prefix of it and are read as far as they go; columns past the declared ones are kept verbatim
in `aws.cloudfront.extra_fields`, and a header column this parser does not know (standard logging v2 lets
users pick fields) is copied to `aws.cloudfront.<name>`.

Values follow Elastic: `-` means "no value", the user agent is URL-decoded once (CloudFront percent-encodes
spaces and other characters in every field), `url.path`/`url.query` are decoded once as the `uri_parts`
processor does, referrer and cookie stay as logged. `url.full` is built like the Elastic script
(`<cs-protocol>://<x-host-header><cs-uri-stem>?<cs-uri-query>`). Unlike Elastic's `urldecode`, `+` is not
turned into a space: CloudFront does not encode `+`, so a literal plus (`+http://www.bing.com/...`) stays.
The content type is written both to `http.response.mime_type` (the current pipeline) and to
`aws.cloudfront.content_type` (the exported field of the package, still in its expected outputs).
A line whose tabs became spaces (a copy of a log, as in Elastic's older test input) is split on spaces:
CloudFront encodes spaces inside values, so the columns are the same.

The document building is shared with `cloudfront_realtime` (`build_document`), which maps the same field
names, so both log types land in the same ECS fields.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import unquote

from worker.parsers._aws import cloud_builder
from worker.parsers._fields import float_reader, int_reader, is_ip, iso_to_utc_ms, snake_case, tls_version
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError, Reroute

STANDARD_COLUMNS: tuple[str, ...] = (
    "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem", "sc-status",
    "cs(Referer)", "cs(User-Agent)", "cs-uri-query", "cs(Cookie)", "x-edge-result-type", "x-edge-request-id",
    "x-host-header", "cs-protocol", "cs-bytes", "time-taken", "x-forwarded-for", "ssl-protocol", "ssl-cipher",
    "x-edge-response-result-type", "cs-protocol-version", "fle-status", "fle-encrypted-fields", "c-port",
    "time-to-first-byte", "x-edge-detailed-result-type", "sc-content-type", "sc-content-len", "sc-range-start",
    "sc-range-end",
)
"""The documented standard-log columns, in order (33 since 2019; older files stop earlier)."""

# Column name -> the key `build_document` reads. Names not listed here are read under their own name when
# `build_document` knows them (`KNOWN_NAMES`), else copied verbatim as an unknown column.
STANDARD_ALIASES: dict[str, str] = {
    "cs(Host)": "distribution-domain",
    "cs-host": "distribution-domain",
    "x-host-header": "host-header",
    "cs(Referer)": "cs-referer",
    "cs(User-Agent)": "cs-user-agent",
    "cs(Cookie)": "cs-cookie",
}
KNOWN_NAMES: frozenset[str] = frozenset(
    [
        "date", "time", "timestamp", "timestamp(ms)", "x-edge-location", "sc-bytes", "c-ip", "cs-method",
        "distribution-domain", "host-header", "cs-uri-stem", "sc-status", "cs-referer", "cs-user-agent",
        "cs-uri-query", "cs-cookie", "x-edge-result-type", "x-edge-request-id", "cs-protocol", "cs-bytes",
        "time-taken", "x-forwarded-for", "ssl-protocol", "ssl-cipher", "x-edge-response-result-type",
        "cs-protocol-version", "fle-status", "fle-encrypted-fields", "c-port", "time-to-first-byte",
        "x-edge-detailed-result-type", "sc-content-type", "sc-content-len", "sc-range-start", "sc-range-end",
        "c-ip-version", "c-country", "cs-accept-encoding", "cs-accept", "cache-behavior-path-pattern",
        "cs-headers", "cs-header-names", "cs-headers-count", "primary-distribution-id",
        "primary-distribution-dns-name", "origin-fbl", "origin-lbl", "asn",
    ]
)
"""Keys `build_document` maps to ECS / `aws.cloudfront.*` fields (after aliasing)."""

_ABSENT: frozenset[str | None] = frozenset((None, "", "-"))

# Columns of real-time logs (and of standard logging v2 when chosen) that the classic 33 columns lack: read
# only when the stream's layout has one of them, so the common case pays nothing for them.
_RARE_KEYS: frozenset[str] = frozenset(
    [
        "c-ip-version", "c-country", "asn", "cs-accept-encoding", "cs-accept", "cache-behavior-path-pattern",
        "cs-headers", "cs-header-names", "cs-headers-count", "primary-distribution-id",
        "primary-distribution-dns-name", "origin-fbl", "origin-lbl",
    ]
)
_RARE_COPIES: tuple[tuple[str, str], ...] = (
    ("cache-behavior-path-pattern", "cache_behavior_path_pattern"),
    ("primary-distribution-id", "primary_distribution_id"),
    ("primary-distribution-dns-name", "primary_distribution_dns_name"),
)

_EDGE_LOCATION = re.compile(r"[A-Z]{3}\d+(?:-[A-Z0-9]+)?\Z")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_=-]{20,}\Z")
_EPOCH = re.compile(r"\d{9,11}(?:\.\d{1,6})?\Z")

_TIME_CACHE: dict[str, str] = {}
_TIME_CACHE_MAX = 8192


_int = int_reader("CloudFront field", clip=60)
_float = float_reader("CloudFront field", clip=60)


_DECODED: dict[str, str] = {}
_DECODED_MAX = 4096


def _decode(value: str) -> str:
    """Undo CloudFront's log encoding once (`%20` -> space); `+` stays `+` (CloudFront never encodes it).

    User agents repeat from line to line, so decoded values are cached.
    """
    if "%" not in value:
        return value
    out = _DECODED.get(value)
    if out is None:
        out = unquote(value)
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[value] = out
    return out


def w3c_timestamp(date: str, clock: str) -> str:
    """`2019-12-04` + `21:02:31` -> `2019-12-04T21:02:31.000Z`; raises ParseError for anything else."""
    key = date + "T" + clock
    cached = _TIME_CACHE.get(key)
    if cached is not None:
        return cached
    if len(date) != 10 or len(clock) < 8:
        raise ParseError(f"CloudFront line: date/time {date[:20]!r} {clock[:20]!r} is not YYYY-MM-DD HH:MM:SS")
    try:
        out = iso_to_utc_ms(key + "Z")
    except ValueError:
        raise ParseError(
            f"CloudFront line: date/time {date[:20]!r} {clock[:20]!r} is not YYYY-MM-DD HH:MM:SS"
        ) from None
    if len(_TIME_CACHE) >= _TIME_CACHE_MAX:
        _TIME_CACHE.clear()
    _TIME_CACHE[key] = out
    return out


def epoch_timestamp(value: str, millis: bool = False) -> str:
    """Epoch seconds with an optional fraction (`1591112398.123`), or epoch milliseconds when `millis`,
    -> `2020-06-02T15:39:58.123Z`; raises ParseError for anything else."""
    if millis:
        if not value.isdigit():
            raise ParseError(f"CloudFront field timestamp(ms): not epoch milliseconds: {value[:40]!r}")
        seconds, fraction = value[:-3] or "0", value[-3:].rjust(3, "0")
    else:
        seconds, _, fraction = value.partition(".")
        if not seconds.isdigit() or (fraction and not fraction.isdigit()):
            raise ParseError(f"CloudFront field timestamp: not epoch seconds: {value[:40]!r}")
    prefix = _TIME_CACHE.get(seconds)
    if prefix is None:
        try:
            tm = time.gmtime(int(seconds))
        except (OverflowError, OSError, ValueError):
            raise ParseError(f"CloudFront field timestamp: out of range: {value[:40]!r}") from None
        prefix = f"{tm[0]:04d}-{tm[1]:02d}-{tm[2]:02d}T{tm[3]:02d}:{tm[4]:02d}:{tm[5]:02d}."
        if len(_TIME_CACHE) >= _TIME_CACHE_MAX:
            _TIME_CACHE.clear()
        _TIME_CACHE[seconds] = prefix
    return prefix + (fraction + "000")[:3] + "Z"


def _unknown_field_name(column: str) -> str:
    """`cs(X-Custom)` -> `cs_x_custom`: a column name as an `aws.cloudfront.*` field name."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in column).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return snake_case(cleaned).lower() or "unnamed"


class Layout:
    """The keys of a stream's columns, in order, resolved once per header (not per line)."""

    __slots__ = ("clock", "keys", "rare", "unknown", "width")

    def __init__(self, columns: tuple[str, ...] | list[str], aliases: dict[str, str]) -> None:
        keys: list[str] = []
        unknown: list[tuple[str, str]] = []
        for column in columns:
            key = aliases.get(column, column)
            if key in KNOWN_NAMES:
                keys.append(key)
            else:
                # Unknown columns get a key build_document never reads, and are copied under their own name.
                key = "?" + column
                keys.append(key)
                unknown.append((key, _unknown_field_name(column)))
        self.keys = tuple(keys)
        self.unknown = tuple(unknown)
        self.width = len(keys)
        present = set(keys)
        self.rare = not present.isdisjoint(_RARE_KEYS)
        self.clock = (
            "timestamp(ms)" if "timestamp(ms)" in present
            else "timestamp" if "timestamp" in present
            else "date" if "date" in present and "time" in present
            else ""
        )


def _forwarded(value: str, doc: dict[str, Any], cf: dict[str, Any], related_ip: list[str]) -> None:
    """`x-forwarded-for`: the IPs of a comma-separated list (`%20`-encoded spaces allowed) go to
    `network.forwarded_ip` (Elastic maps a `localhost...` entry to 127.0.0.1); a list with anything else is
    also kept verbatim."""
    ips: list[str] = []
    clean = True
    for part in _decode(value).split(","):
        item = part.strip()
        if not item or item == "-":
            continue
        if item[:1] == "[" and item[-1:] == "]":
            item = item[1:-1]
        if is_ip(item):
            pass
        elif item.startswith("localhost"):
            item = "127.0.0.1"
        else:
            clean = False
            continue
        if item not in ips:
            ips.append(item)
    if ips:
        doc.setdefault("network", {})["forwarded_ip"] = ips
        for ip in ips:
            if ip not in related_ip:
                related_ip.append(ip)
    if not clean:
        cf["x_forwarded_for"] = value


def _headers(value: str, cf: dict[str, Any]) -> None:
    """`cs-headers` (`Name:value` lines, URL-encoded) -> `aws.cloudfront.headers.<lower-case name>`."""
    text = _decode(value)
    headers: dict[str, str] = {}
    for entry in text.split("\n"):
        name, colon, header_value = entry.partition(":")
        name = name.strip().lower()
        if not colon or not name:
            continue
        header_value = header_value.strip()
        if name in headers:
            headers[name] = headers[name] + ", " + header_value
        else:
            headers[name] = header_value
    if headers:
        cf["headers"] = headers
    else:
        cf["headers_raw"] = value


def _rare(get: Any, doc: dict[str, Any], cf: dict[str, Any]) -> None:
    """The real-time-only columns (see `_RARE_KEYS`)."""
    for key, name in _RARE_COPIES:
        if (value := get(key)) and value != "-":
            cf[name] = value
    if (value := get("c-country")) and value != "-":
        doc.setdefault("source", {})["geo"] = {"country_iso_code": value}
    if (value := get("asn")) and value != "-":
        doc.setdefault("source", {})["as"] = {"number": _int(value, "asn")}
    if (value := get("c-ip-version")) and value != "-":
        doc.setdefault("network", {}).setdefault("type", value.lower())
    if (value := get("cs-accept-encoding")) and value != "-":
        cf["accept_encoding"] = _decode(value)
    if (value := get("cs-accept")) and value != "-":
        cf["accept"] = _decode(value)
    if (value := get("origin-fbl")) and value != "-":
        cf["origin_fbl"] = _float(value, "origin-fbl")
    if (value := get("origin-lbl")) and value != "-":
        cf["origin_lbl"] = _float(value, "origin-lbl")
    if (value := get("cs-headers")) and value != "-":
        _headers(value, cf)
    if (value := get("cs-header-names")) and value != "-":
        names = [name for name in _decode(value).split("\n") if name]
        if names:
            cf["header_names"] = names
    if (value := get("cs-headers-count")) and value != "-":
        cf["headers_count"] = _int(value, "cs-headers-count")


def build_document(
    layout: Layout, values: list[str], line: str, cloud: Callable[[], dict[str, Any]], keep_original: bool
) -> dict[str, Any]:
    """One CloudFront record (`line`, split into `values`, read by `layout`) -> ECS document, with `cloud()`
    and, when `keep_original`, the line as `event.original`. Raises ParseError."""
    get = dict(zip(layout.keys, values, strict=False)).get

    clock = layout.clock
    if clock == "date":
        timestamp = w3c_timestamp(get("date") or "", get("time") or "")
    elif clock == "timestamp":
        timestamp = epoch_timestamp(get("timestamp") or "")
    elif clock:
        timestamp = epoch_timestamp(get("timestamp(ms)") or "", millis=True)
    else:
        raise ParseError("CloudFront record has no date/time or timestamp column")

    cf: dict[str, Any] = {}
    event: dict[str, Any] = {"kind": "event", "category": ["web"], "type": ["access"]}
    doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "aws": {"cloudfront": cf}}
    request: dict[str, Any] = {}
    response: dict[str, Any] = {}
    http: dict[str, Any] = {}
    network: dict[str, Any] = {}
    related_ip: list[str] = []
    related_hosts: list[str] = []

    if (value := get("x-edge-location")) and value != "-":
        cf["edge_location"] = value
    if (value := get("x-edge-result-type")) and value != "-":
        cf["edge_result_type"] = value
    if (value := get("x-edge-response-result-type")) and value != "-":
        cf["edge_response_result_type"] = value
    if (value := get("x-edge-detailed-result-type")) and value != "-":
        cf["edge_detailed_result_type"] = value
    if (value := get("time-to-first-byte")) and value != "-":
        cf["time_to_first_byte"] = _float(value, "time-to-first-byte")

    if (value := get("sc-bytes")) and value != "-":
        response["bytes"] = _int(value, "sc-bytes")
    if (value := get("cs-bytes")) and value != "-":
        request["bytes"] = _int(value, "cs-bytes")
    if (value := get("sc-status")) and value != "-":
        status = _int(value, "sc-status")
        response["status_code"] = status
        event["outcome"] = "success" if 0 < status < 400 else "failure"
    if (value := get("cs-method")) and value != "-":
        request["method"] = value
    if (value := get("cs-referer")) and value != "-":
        request["referrer"] = value
    if (value := get("x-edge-request-id")) and value != "-":
        request["id"] = value
        event["id"] = value
    if (value := get("sc-content-type")) and value != "-":
        response["mime_type"] = value
        cf["content_type"] = value
    if (value := get("sc-content-len")) and value != "-":
        response["body"] = {"bytes": _int(value, "sc-content-len")}
    if (value := get("cs-protocol-version")) and value != "-":
        _, slash, version = value.partition("/")
        if slash and version:
            http["version"] = version
    if (value := get("time-taken")) and value != "-":
        event["duration"] = round(_float(value, "time-taken") * 1_000_000_000)

    if (value := get("c-ip")) and value != "-":
        source: dict[str, Any] = {"address": value}
        doc["source"] = source
        if is_ip(value):
            source["ip"] = value
            related_ip.append(value)
            network["type"] = "ipv6" if ":" in value else "ipv4"
        if (value := get("c-port")) and value != "-":
            source["port"] = _int(value, "c-port")
    elif (value := get("c-port")) and value != "-":
        doc["source"] = {"port": _int(value, "c-port")}

    if (value := get("cs-protocol")) and value != "-":
        scheme = value
        network["protocol"] = value
    else:
        scheme = ""
    if network:
        doc["network"] = network
    if (value := get("distribution-domain")) and value != "-":
        cf["domain"] = value
        related_hosts.append(value)
    if (value := get("host-header")) and value != "-":
        host = value
        doc["destination"] = {"address": value, "domain": value}
        if value not in related_hosts:
            related_hosts.append(value)
    else:
        host = ""

    # url: the Elastic script joins scheme, host, path and query into url.full and runs uri_parts on it,
    # which decodes path and query once.
    path = get("cs-uri-stem") or ""
    query = get("cs-uri-query") or ""
    if query == "-":
        query = ""
    if path == "-":
        path = ""
    elif "?" in path:  # real-time logs: the stem includes the query string
        path, _, stem_query = path.partition("?")
        query = query or stem_query
    url: dict[str, Any] = {}
    if path:
        url["path"] = _decode(path)
        last = path.rpartition("/")[2]
        dot = last.rfind(".")
        if 0 <= dot < len(last) - 1:
            url["extension"] = last[dot + 1 :]
    if query:
        url["query"] = _decode(query)
    if host and scheme:
        url["scheme"] = scheme
        url["domain"] = host
        url["full"] = f"{scheme}://{host}{path}?{query}" if query else f"{scheme}://{host}{path}"
    if url:
        doc["url"] = url

    if (value := get("cs-user-agent")) and value != "-":
        doc["user_agent"] = {"original": _decode(value)}
    if (value := get("x-forwarded-for")) and value != "-":
        _forwarded(value, doc, cf, related_ip)
    if (value := get("ssl-protocol")) and value != "-":
        parsed = tls_version(value)
        if parsed is not None:
            doc["tls"] = {"version_protocol": parsed[0], "version": parsed[1]}
        else:
            cf["ssl_protocol"] = value
    if (value := get("ssl-cipher")) and value != "-":
        doc.setdefault("tls", {})["cipher"] = value

    if (value := get("cs-cookie")) and value != "-":
        cf["cookies"] = value
    if (value := get("fle-status")) and value != "-":
        cf["fle_status"] = value
    if (value := get("fle-encrypted-fields")) and value != "-":
        value = value.strip()
        if value and value != "-":
            cf["fle_encrypted_fields"] = _int(value, "fle-encrypted-fields")
    if (value := get("sc-range-start")) and value != "-":
        cf["range_start"] = _int(value, "sc-range-start")
    if (value := get("sc-range-end")) and value != "-":
        cf["range_end"] = _int(value, "sc-range-end")
    if layout.rare:
        _rare(get, doc, cf)

    if request:
        http["request"] = request
    if response:
        http["response"] = response
    if http:
        doc["http"] = http
    if related_ip:
        doc["related"] = {"ip": related_ip, "hosts": related_hosts} if related_hosts else {"ip": related_ip}
    elif related_hosts:
        doc["related"] = {"hosts": related_hosts}

    for key, name in layout.unknown:
        if (value := get(key)) and value != "-" and name not in cf:
            cf[name] = value
    if len(values) > layout.width:
        extra = values[layout.width :]
        if any(item not in _ABSENT for item in extra):
            cf["extra_fields"] = extra

    doc["cloud"] = cloud()
    if keep_original:
        event["original"] = line
    return doc


FIELDS: dict[str, FieldType] = {
    "@timestamp": "date",
    "event.kind": "keyword",
    "event.category": "keyword",
    "event.type": "keyword",
    "event.outcome": "keyword",
    "event.id": "keyword",
    "event.duration": "long",
    "event.original": "keyword",
    "cloud.provider": "keyword",
    "cloud.account.id": "keyword",
    "cloud.region": "keyword",
    "source.address": "keyword",
    "source.ip": "ip",
    "source.port": "long",
    "source.geo.country_iso_code": "keyword",
    "source.as.number": "long",
    "destination.address": "keyword",
    "destination.domain": "keyword",
    "network.type": "keyword",
    "network.protocol": "keyword",
    "network.forwarded_ip": "ip",
    "related.ip": "ip",
    "related.hosts": "keyword",
    "http.version": "keyword",
    "http.request.method": "keyword",
    "http.request.bytes": "long",
    "http.request.id": "keyword",
    "http.request.referrer": "keyword",
    "http.response.bytes": "long",
    "http.response.status_code": "long",
    "http.response.mime_type": "keyword",
    "http.response.body.bytes": "long",
    "url.full": "keyword",
    "url.scheme": "keyword",
    "url.domain": "keyword",
    "url.path": "keyword",
    "url.query": "keyword",
    "url.extension": "keyword",
    "user_agent.original": "keyword",
    "tls.version": "keyword",
    "tls.version_protocol": "keyword",
    "tls.cipher": "keyword",
    "aws.cloudfront.edge_location": "keyword",
    "aws.cloudfront.edge_result_type": "keyword",
    "aws.cloudfront.edge_response_result_type": "keyword",
    "aws.cloudfront.edge_detailed_result_type": "keyword",
    "aws.cloudfront.domain": "keyword",
    "aws.cloudfront.content_type": "keyword",
    "aws.cloudfront.cookies": "keyword",
    "aws.cloudfront.fle_status": "keyword",
    "aws.cloudfront.fle_encrypted_fields": "long",
    "aws.cloudfront.time_to_first_byte": "float",
    "aws.cloudfront.range_start": "long",
    "aws.cloudfront.range_end": "long",
    "aws.cloudfront.ssl_protocol": "keyword",
    "aws.cloudfront.x_forwarded_for": "keyword",
    "aws.cloudfront.accept_encoding": "keyword",
    "aws.cloudfront.accept": "keyword",
    "aws.cloudfront.cache_behavior_path_pattern": "keyword",
    "aws.cloudfront.headers": "flattened",
    "aws.cloudfront.headers_raw": "keyword",
    "aws.cloudfront.header_names": "keyword",
    "aws.cloudfront.headers_count": "long",
    "aws.cloudfront.primary_distribution_id": "keyword",
    "aws.cloudfront.primary_distribution_dns_name": "keyword",
    "aws.cloudfront.origin_fbl": "float",
    "aws.cloudfront.origin_lbl": "float",
    "aws.cloudfront.extra_fields": "keyword",
}
"""Index template types of every field `build_document` emits (shared with `cloudfront_realtime`)."""

_DEFAULT_LAYOUT = Layout(STANDARD_COLUMNS, STANDARD_ALIASES)


class CloudFrontParser(LogParser):
    """Keeps the columns of the last `#Fields:` header of the stream."""

    log_type: ClassVar[str] = "cloudfront"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = FIELDS
    example: ClassVar[str] = (
        "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\t"
        "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20"
        "Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\t"
        "d111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t"
        "-\t11040\t0.001\tHit\ttext/html\t78\t-\t-"
    )
    routing: ClassVar[str] = (
        "S3 key `<prefix>/<distribution-id>.YYYY-MM-DD-HH.<unique>.gz` (distribution ids are E + 13-14 upper-case "
        "letters and digits), or content starting with `#Version: 1.0` and a `#Fields:` line of CloudFront "
        "columns (`x-edge-...`), or a headerless tab-separated line of date, time, edge location, ... request id."
    )

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._layout = _DEFAULT_LAYOUT
        self._has_header = False
        self._cloud = cloud_builder(ctx.account_id, ctx.region)

    @classmethod
    def sniff(cls, head: str) -> bool:
        head = head.removeprefix("\ufeff")
        if head.startswith("#Version:"):
            second = head.partition("\n")[2]
            if not second.startswith("#Fields:"):
                return False
            names = second.partition("\n")[0]
            return "x-edge-" in names or "cs(Host)" in names
        first = head.partition("\n")[0].rstrip("\r")
        parts = first.split("\t")
        if len(parts) < 15:
            return False
        date, clock = parts[0], parts[1]
        return (
            len(date) == 10 and date[4] == "-" and date[7] == "-" and date.replace("-", "").isdigit()
            and len(clock) == 8 and clock[2] == ":" and clock[5] == ":" and clock.replace(":", "").isdigit()
            and _EDGE_LOCATION.match(parts[2]) is not None
            and _REQUEST_ID.match(parts[14]) is not None
        )

    def parse(self, record: Any) -> dict[str, Any] | None:
        line: str = record
        if not line or line[0] == "#":
            if line.startswith("#Fields:"):
                columns = line[8:].split()
                if not columns:
                    raise ParseError("CloudFront #Fields: header declares no columns")
                self._layout = Layout(columns, STANDARD_ALIASES)
                self._has_header = True
            return None  # `#Version:` and other W3C directives, blank lines
        if "\t" in line:
            values = line.split("\t")
        else:
            # Tabs turned into spaces (copied logs): CloudFront encodes spaces inside values, so this is safe.
            values = line.split(" ")
            if len(values) < 3:
                if not line.strip():
                    return None
                raise ParseError("not a CloudFront log line: no tab-separated columns")
        if not self._has_header and _EPOCH.match(values[0]) is not None:
            raise Reroute("cloudfront_realtime")
        return build_document(self._layout, values, line, self._cloud, self.ctx.keep_original)


PARSER = CloudFrontParser
