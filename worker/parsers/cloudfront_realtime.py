"""CloudFront real-time log records (Kinesis Data Streams) -> ECS, in the same fields as `cloudfront`.

A real-time record is one tab-separated line without a header: which columns it has is chosen when the
real-time log configuration is created, so the column list comes from the source's `fields` option (a list,
or a comma/space separated string, of CloudFront real-time field names); without it the full documented
field list is assumed. CloudFront writes the chosen fields in its documented order, whatever order the
configuration lists them in, so a `fields` option made only of documented names is put in that order
(`field_order: given` keeps the option's order as it is).

A record with fewer columns than the field list is refused (the list does not describe the stream, and
reading it by position would shift every value); columns past it are kept in `aws.cloudfront.extra_fields`.

Field mapping is shared with the standard-log parser (`cloudfront.build_document`). Two names differ in
meaning between the formats, and each format's documentation is followed: in real-time logs `cs-host` is the
viewer's `Host` header (`destination.domain`) and `x-host-header` the distribution's domain name
(`aws.cloudfront.domain`), while in standard logs `cs(Host)` is the distribution and `x-host-header` the
`Host` header. `timestamp` is epoch seconds with milliseconds; `cs-uri-stem` includes the query string.
"""

from __future__ import annotations

from typing import Any, ClassVar

from worker.parsers._aws import cloud_builder
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError, Reroute
from worker.parsers.cloudfront import FIELDS, STANDARD_ALIASES, Layout, build_document

REALTIME_COLUMNS: tuple[str, ...] = (
    "timestamp", "c-ip", "time-to-first-byte", "sc-status", "sc-bytes", "cs-method", "cs-protocol", "cs-host",
    "cs-uri-stem", "cs-bytes", "x-edge-location", "x-edge-request-id", "x-host-header", "time-taken",
    "cs-protocol-version", "c-ip-version", "cs-user-agent", "cs-referer", "cs-cookie", "cs-uri-query",
    "x-edge-response-result-type", "x-forwarded-for", "ssl-protocol", "ssl-cipher", "x-edge-result-type",
    "fle-encrypted-fields", "fle-status", "sc-content-type", "sc-content-len", "sc-range-start", "sc-range-end",
    "c-port", "x-edge-detailed-result-type", "c-country", "cs-accept-encoding", "cs-accept",
    "cache-behavior-path-pattern", "cs-headers", "cs-header-names", "cs-headers-count", "primary-distribution-id",
    "primary-distribution-dns-name", "origin-fbl", "origin-lbl", "asn",
)
"""Every real-time log field of the CloudFront developer guide, in the documented (delivery) order."""

_DELIVERY_ORDER: dict[str, int] = {
    name: rank
    for rank, name in enumerate(
        (
            "timestamp", "c-ip", "s-ip", *REALTIME_COLUMNS[2:],
            # Fields added after the list above, in the order CloudFront's field list has them.
            "cmcd-encoded-bitrate", "cmcd-buffer-length", "cmcd-buffer-starvation", "cmcd-content-id",
            "cmcd-object-duration", "cmcd-deadline", "cmcd-measured-throughput", "cmcd-next-object-request",
            "cmcd-next-range-request", "cmcd-object-type", "cmcd-playback-rate",
            "cmcd-requested-maximum-throughput", "cmcd-streaming-format", "cmcd-session-id", "cmcd-stream-type",
            "cmcd-startup", "cmcd-top-bitrate", "cmcd-version", "r-host", "sr-reason", "x-edge-mqcs",
            "distribution-tenant-id", "connection-id",
        )
    )
}
"""Documented field -> position in a delivered record; used to order a `fields` option."""

REALTIME_ALIASES: dict[str, str] = {
    **STANDARD_ALIASES,
    "cs-host": "host-header",
    "x-host-header": "distribution-domain",
}


def field_list(option: Any, order: Any = None) -> tuple[str, ...]:
    """The `fields` option (list or comma/space separated string) as column names in delivery order.

    Raises ValueError when the option is not a list of names.
    """
    if option is None or option == "" or option == []:
        return REALTIME_COLUMNS
    if isinstance(option, str):
        names = [name for name in option.replace(",", " ").split() if name]
    elif isinstance(option, (list, tuple)) and all(isinstance(name, str) for name in option):
        names = [name.strip() for name in option if name.strip()]
    else:
        raise ValueError(f"cloudfront_realtime option fields: expected a list of field names, got {option!r}")
    if not names:
        return REALTIME_COLUMNS
    if len(set(names)) != len(names):
        raise ValueError(f"cloudfront_realtime option fields: a field is listed twice: {names!r}")
    if order in (None, "", "delivery", "canonical") and all(name in _DELIVERY_ORDER for name in names):
        names.sort(key=_DELIVERY_ORDER.__getitem__)
    elif order not in (None, "", "delivery", "canonical", "given"):
        raise ValueError(f"cloudfront_realtime option field_order: expected 'delivery' or 'given', got {order!r}")
    return tuple(names)


_LAYOUTS: dict[tuple[Any, Any], tuple[Layout, str | None]] = {}


def _layout(option: Any, order: Any) -> tuple[Layout, str | None]:
    """The column layout for a `fields` option, and the reason every record is refused when the option is
    unusable. Cached: a parser is made per Kinesis batch, and a source's option never changes."""
    key: tuple[Any, Any] | None = (tuple(option) if isinstance(option, list) else option, order)
    try:
        cached = _LAYOUTS.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable option: not cached (field_list refuses it below)
        key, cached = None, None
    if cached is not None:
        return cached
    error: str | None = None
    try:
        columns = field_list(option, order)
    except ValueError as exc:
        error = str(exc)
        columns = REALTIME_COLUMNS
    layout = Layout(columns, REALTIME_ALIASES)
    if error is None and not layout.clock:
        error = "cloudfront_realtime option fields: the field list has no timestamp field"
    if key is not None and len(_LAYOUTS) < 64:
        _LAYOUTS[key] = (layout, error)
    return layout, error


class CloudFrontRealtimeParser(LogParser):
    """The column list is fixed per source (option `fields`), resolved once per stream."""

    log_type: ClassVar[str] = "cloudfront_realtime"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = FIELDS
    example: ClassVar[str] = (
        "1591112398.123\t198.51.100.23\t0.002\t200\t3196\tGET\thttps\twww.example.com\t/images/cat.jpg?size=large\t"
        "412\tIAD89-C1\tf4dmmyMb4rF7ZlCt2yZNGadoaG4Y3OaUjcsDF4lK2RFnhBuhWg1h6w==\td111111abcdef8.cloudfront.net\t"
        "0.003\tHTTP/2.0\tIPv4\tMozilla/5.0%20(X11;%20Linux%20x86_64;%20rv:109.0)%20Gecko/20100101%20Firefox/115.0\t"
        "https://www.example.com/\t-\tsize=large\tHit\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tHit\t-\t-\timage/jpeg\t"
        "2738\t-\t-\t50512\tHit\tUS\tgzip,%20deflate,%20br\timage/avif,image/webp,*/*\t/images/*\t"
        "host:www.example.com%0Aaccept:image/avif,image/webp,*/*%0A\thost%0Aaccept%0A\t2\t-\t-\t-\t-\t64496"
    )
    routing: ClassVar[str] = (
        "Never sniffed: chosen by the source's `log_type: cloudfront_realtime` (a Kinesis stream the real-time "
        "log configuration writes to), with the configuration's field list in the `fields` option."
    )

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._layout, self._error = _layout(ctx.options.get("fields"), ctx.options.get("field_order"))
        self._cloud = cloud_builder(ctx.account_id, ctx.region)

    def parse(self, record: Any) -> dict[str, Any] | None:
        line: str = record
        if not line or line.isspace():
            return None
        if self._error is not None:
            raise ParseError(self._error)
        values = line.split("\t")
        first = values[0]
        if first[:1] == "#" or (len(first) == 10 and first[4] == "-" and first[7] == "-"):
            raise Reroute("cloudfront")  # a standard log header or line (date, time, ...)
        layout = self._layout
        if len(values) < layout.width:
            raise ParseError(
                f"CloudFront real-time record has {len(values)} fields, the field list has {layout.width}: set the "
                "source's `fields` option to the real-time log configuration's fields"
            )
        return build_document(layout, values, line, self._cloud, self.ctx.keep_original)


PARSER = CloudFrontRealtimeParser
