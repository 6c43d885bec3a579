"""VPC (and Transit Gateway) flow log records -> ECS, with the field names Elastic's `aws.vpcflow` uses.

Which column is which is a property of the stream, not of the line: S3 delivery writes the format as a header
line (repeated whenever a file is appended to), CloudWatch Logs and Firehose streams carry no header at all.
The order of precedence is therefore: the last header seen in this stream, then the `format` option of the
source, then the AWS default (14 columns), then the documented AWS formats that Elastic also recognises by
their column count (so a headerless stream of e.g. the 29-column "all v5 fields" format still parses). A
line that fits none of these is a ParseError, never a guess at the columns.

Value rules follow Elastic: `-` means "no value" and the field is left out, NODATA/SKIPDATA lines keep only
what they carry (times, ids, `log_status`), `@timestamp` is the end of the capture window, ports, counts and
sizes are numbers, the protocol number stays a string in `network.iana_number`.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import orjson

from worker.model import Serialized
from worker.parsers._fields import EPOCH_CACHE, IANA_PROTOCOLS, community_id, epoch_to_iso, int_reader, snake_case
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError

DEFAULT_FORMAT = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status"
)

_V5_ALL = (
    DEFAULT_FORMAT + " vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id "
    "sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"
)
_V8_ALL = (
    _V5_ALL + " ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id "
    "ecs-container-id ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn "
    "ecs-task-id reject-reason"
)
_TGW_DEFAULT = (
    "version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-account-id tgw-dst-vpc-account-id "
    "tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id "
    "tgw-dst-az-id tgw-pair-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
    "log-status type packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded "
    "packets-lost-ttl-expired tcp-flags region flow-direction pkt-src-aws-service pkt-dst-aws-service"
)
# Formats a headerless line is matched to by its column count: the AWS default, the example formats of the
# AWS flow-log documentation that Elastic's pipeline also accepts, "every field in table order" up to v5 and
# up to v8, and the Transit Gateway default. Counts are unique, so the choice is never ambiguous.
_KNOWN_FORMATS: tuple[str, ...] = (
    DEFAULT_FORMAT,
    "instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr",
    "version interface-id account-id vpc-id subnet-id instance-id srcaddr dstaddr srcport dstport protocol "
    "tcp-flags type pkt-srcaddr pkt-dstaddr action log-status",
    "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport "
    "pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status",
    _V5_ALL,
    _TGW_DEFAULT,
    _V8_ALL,
)

KNOWN_FIELDS: frozenset[str] = frozenset(
    [*" ".join(_KNOWN_FORMATS).split(), "resource-id", "encryption-status", "interface-type"]
)
"""Every column name AWS documents (VPC v2-v8+ and Transit Gateway); a header must start with one."""

# Columns that become ECS fields (or need more than a copy); every other column is copied as a string to
# `aws.vpcflow.<name with underscores>`, so a column AWS adds tomorrow is kept, not lost.
_SPECIAL = frozenset(
    [
        "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "action",
        "account-id", "instance-id", "tcp-flags", "region", "az-id", "flow-direction", "sublocation-type",
        "sublocation-id", "pkt-src-aws-service", "pkt-dst-aws-service", "packets-lost-no-route",
        "packets-lost-blackhole", "packets-lost-mtu-exceeded", "packets-lost-ttl-expired",
    ]
)
_LONG_COLUMNS = (
    "packets-lost-no-route",
    "packets-lost-blackhole",
    "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired",
)
_TCP_FLAG_BITS = ((0x01, "fin"), (0x02, "syn"), (0x04, "rst"), (0x08, "psh"), (0x10, "ack"), (0x20, "urg"))
_TCP_FLAGS_CACHE: dict[str, list[str]] = {}


def _tcp_flags_array(value: str) -> list[str]:
    """The OR of the TCP flags seen in the window, spelled out as Elastic's `tcp_flags_array` does."""
    cached = _TCP_FLAGS_CACHE.get(value)
    if cached is None:
        bits = int(value)
        cached = [name for bit, name in _TCP_FLAG_BITS if bits & bit]
        if len(_TCP_FLAGS_CACHE) < 512:
            _TCP_FLAGS_CACHE[value] = cached
    return list(cached)


def normalize_format(text: str) -> tuple[str, ...]:
    """A format as written anywhere (`${srcaddr} ${dstaddr}`, `srcaddr dstaddr`, `pkt_srcaddr`) -> names."""
    names = []
    for token in text.split():
        if token.startswith("${") and token.endswith("}"):
            token = token[2:-1]
        names.append(token.lower().replace("_", "-"))
    if not names:
        raise ValueError("empty VPC flow log format")
    return tuple(names)


class _Format:
    """Column positions of one format, resolved once so that a line is read by index, not by name."""

    __slots__ = (
        "account", "action", "az", "bytes", "direction", "dstaddr", "dstport", "end", "instance", "longs",
        "n", "names", "packets", "pkt_dst_svc", "pkt_src_svc", "plain", "protocol", "region", "srcaddr",
        "srcport", "start", "subloc_id", "subloc_type", "tcp_flags",
    )

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.n = len(names)
        pos = {name: i for i, name in enumerate(names)}
        if len(pos) != len(names):
            raise ValueError(f"VPC flow log format repeats a field: {' '.join(names)}")
        get = pos.get
        self.srcaddr = get("srcaddr", -1)
        self.dstaddr = get("dstaddr", -1)
        self.srcport = get("srcport", -1)
        self.dstport = get("dstport", -1)
        self.protocol = get("protocol", -1)
        self.packets = get("packets", -1)
        self.bytes = get("bytes", -1)
        self.start = get("start", -1)
        self.end = get("end", -1)
        self.action = get("action", -1)
        self.account = get("account-id", -1)
        self.instance = get("instance-id", -1)
        self.tcp_flags = get("tcp-flags", -1)
        self.region = get("region", -1)
        self.az = get("az-id", -1)
        self.direction = get("flow-direction", -1)
        self.subloc_type = get("sublocation-type", -1)
        self.subloc_id = get("sublocation-id", -1)
        self.pkt_src_svc = get("pkt-src-aws-service", -1)
        self.pkt_dst_svc = get("pkt-dst-aws-service", -1)
        self.longs = tuple((pos[name], snake_case(name)) for name in _LONG_COLUMNS if name in pos)
        self.plain = tuple((i, snake_case(name)) for i, name in enumerate(names) if name not in _SPECIAL)


_KNOWN_BY_COUNT: dict[int, _Format] = {}
for _text in _KNOWN_FORMATS:
    _fmt = _Format(normalize_format(_text))
    _KNOWN_BY_COUNT[_fmt.n] = _fmt
_DEFAULT = _KNOWN_BY_COUNT[14]


def _is_header(values: list[str]) -> bool:
    """A header that starts with a column newer than this parser: names only, at least one of them known.

    Values never spell a column name (actions, statuses and services are upper case, ids carry a prefix and
    digits), so one known name among name-shaped tokens is enough.
    """
    return any(v in KNOWN_FIELDS for v in values) and all(
        v.islower() and v.replace("-", "").isalnum() for v in values
    )


_int = int_reader("VPC flow field")
_OUTCOME_OF = {"ACCEPT": "success", "REJECT": "failure"}

# `_default_serialized`'s pieces: the JSON `orjson.dumps` writes for `_default_document`'s dict, keys in the same
# order, with a slot per value. Optional keys are whole pieces (empty when absent).
_OUTCOME_JSON = {action: f',"outcome":"{outcome}"' for action, outcome in _OUTCOME_OF.items()}
_TRANSPORT_JSON = {number: ',"transport":' + orjson.dumps(name).decode() for number, name in IANA_PROTOCOLS.items()}
_DEFAULT_JSON = (
    '{"event":{"kind":"event","category":["network"],"type":["connection"],"start":"%s","end":"%s"%s},'
    '"cloud":{"provider":"aws","account":{"id":"%s"}<region>},'
    '"aws":{"vpcflow":{"version":"%s","interface_id":"%s","log_status":"%s","action":"%s","account_id":"%s"}},'
    '"source":{"address":"%s","ip":"%s","port":%d,"packets":%d,"bytes":%d},'
    '"destination":{"address":"%s","ip":"%s","port":%d},"related":{"ip":["%s","%s"]},'
    '"network":{"type":"%s","iana_number":"%s"%s,"packets":%d,"bytes":%d},"@timestamp":"%s"}'
)


_V2_LINE = re.compile(r"^\d+ (?:\d{12}|-|unknown) (?:eni-|tgw-|-)\S* ")


class VpcFlowParser(LogParser):
    """One instance per stream: it remembers the header (format) declared by the stream."""

    log_type: ClassVar[str] = "vpc_flow"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.start": "date",
        "event.end": "date",
        "source.ip": "ip",
        "source.address": "keyword",
        "source.port": "long",
        "source.bytes": "long",
        "source.packets": "long",
        "destination.ip": "ip",
        "destination.address": "keyword",
        "destination.port": "long",
        "network.bytes": "long",
        "network.packets": "long",
        "network.iana_number": "keyword",
        "network.transport": "keyword",
        "network.type": "keyword",
        "network.direction": "keyword",
        "network.community_id": "keyword",
        "related.ip": "ip",
        "cloud.account.id": "keyword",
        "cloud.instance.id": "keyword",
        "cloud.region": "keyword",
        "cloud.availability_zone": "keyword",
        "aws.vpcflow.version": "keyword",
        "aws.vpcflow.account_id": "keyword",
        "aws.vpcflow.interface_id": "keyword",
        "aws.vpcflow.instance_id": "keyword",
        "aws.vpcflow.vpc_id": "keyword",
        "aws.vpcflow.subnet_id": "keyword",
        "aws.vpcflow.action": "keyword",
        "aws.vpcflow.log_status": "keyword",
        "aws.vpcflow.tcp_flags": "keyword",
        "aws.vpcflow.tcp_flags_array": "keyword",
        "aws.vpcflow.type": "keyword",
        "aws.vpcflow.pkt_srcaddr": "ip",
        "aws.vpcflow.pkt_dstaddr": "ip",
        "aws.vpcflow.traffic_path": "keyword",
        "aws.vpcflow.reject_reason": "keyword",
        "aws.vpcflow.packets_lost_no_route": "long",
        "aws.vpcflow.packets_lost_blackhole": "long",
        "aws.vpcflow.packets_lost_mtu_exceeded": "long",
        "aws.vpcflow.packets_lost_ttl_expired": "long",
    }

    example = (
        "2 123456789010 eni-1235b8ca123456789 78.24.182.42 158.109.0.1 20641 22 6 20 4249 1418530010 1418530070 "
        "ACCEPT OK"
    )
    routing = (
        "S3 key `AWSLogs/<account>/vpcflowlogs/<region>/...`; content: a header line of flow-log field names, or "
        "a default-format (v2) line; CloudWatch Logs groups named in the source's `log_groups`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        line = head.lstrip().split("\n", 1)[0].strip()
        if line.startswith("{"):
            body = line.split('"message"', 1)[1].lstrip(' :"') if '"message"' in line else ""
            return bool(_V2_LINE.match(body))
        if _V2_LINE.match(line):
            return True
        names = [name.removeprefix("${").removesuffix("}") for name in line.split()]
        return len(names) >= 3 and all(name in KNOWN_FIELDS for name in names)

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._format: _Format | None = None
        option = ctx.options.get("format")
        if option:
            try:
                names = normalize_format(str(option))
                self._format = _DEFAULT if names == _DEFAULT.names else _Format(names)
            except ValueError as exc:
                raise ValueError(f"vpc_flow option format: {exc}") from None
        self._community_id = bool(ctx.options.get("community_id", False))
        self._region = ctx.region
        self._plain_default = not self._community_id and not ctx.keep_original
        """Whether `_default_document` may be used (it knows neither option)."""
        region_json = ',"region":' + orjson.dumps(self._region).decode() if self._region else ""
        self._default_json = _DEFAULT_JSON.replace("<region>", region_json.replace("%", "%%"))

    serializes = True

    def parse_serialized(self, record: Any) -> dict[str, Any] | Serialized | None:
        """`parse`, with default-format lines formatted straight into their JSON (half the cost of a dict and
        `orjson.dumps`): every value is a token, which the caller guarantees needs no escaping. Every line of
        another format, or with a `-`, goes through `parse`."""
        line: str = record
        if line[:1] == "{":
            return self.parse(record)
        values = line.split()
        if (len(values) == 14 and self._plain_default and (self._format is None or self._format is _DEFAULT)
                and values[0].isdigit() and "-" not in values):
            return self._default_serialized(values, line)
        return self._parse_values(values, line)  # split once: custom formats (v5 headers) come this way

    def _default_serialized(self, v: list[str], original: str) -> dict[str, Any] | Serialized:
        """`_default_document`'s JSON, formatted; anything unusual (an uncached time, an unnamed protocol, a
        number orjson would refuse) is left to `_default_document`, which also raises its errors."""
        version, account, eni, src, dst, sport, dport, proto, packets, size, start, end, action, status = v
        transport = _TRANSPORT_JSON.get(proto)
        started = EPOCH_CACHE.get(start)
        ended = EPOCH_CACHE.get(end)
        if transport is None or started is None or ended is None:
            return self._default_document(v, original)
        try:
            n_packets, n_bytes, n_sport, n_dport = int(packets), int(size), int(sport), int(dport)
        except ValueError:
            return self._default_document(v, original)
        if (n_packets | n_bytes | n_sport | n_dport) >> 63:  # negative or past 64 bits: orjson's own verdict
            return self._default_document(v, original)
        return ended, (self._default_json % (
            started, ended, _OUTCOME_JSON.get(action, ""), account, version, eni, status, action, account,
            src, src, n_sport, n_packets, n_bytes, dst, dst, n_dport, src, dst, "ipv6" if ":" in src else "ipv4",
            proto, transport, n_packets, n_bytes, ended)).encode()

    def parse(self, record: Any) -> dict[str, Any] | None:
        line: str = record
        return self._parse_values((self._unwrap(line) if line[:1] == "{" else line).split(), line)

    def _parse_values(self, values: list[str], original: str) -> dict[str, Any] | None:
        """A line's whitespace-separated values (`original`: the line as read, JSON wrapper included)."""
        if not values:
            return None
        first = values[0]
        if not first.isdigit() and (first in KNOWN_FIELDS or first.startswith("${")
                                    or (first[:1].islower() and _is_header(values))):
            self._header(values)
            return None

        fmt = self._format or _KNOWN_BY_COUNT.get(len(values))
        if fmt is _DEFAULT and self._plain_default and "-" not in values:
            return self._default_document(values, original)
        if fmt is None:
            raise ParseError(
                f"VPC flow line has {len(values)} fields and the stream declared no format (no header line, "
                f"no format option); known headerless formats have {sorted(_KNOWN_BY_COUNT)} fields"
            )
        if len(values) != fmt.n:
            raise ParseError(f"VPC flow line has {len(values)} fields, the declared format has {fmt.n}")
        return self._document(fmt, values, original)

    def _unwrap(self, line: str) -> str:
        """Lines forwarded as `{"message": "<record>"}` (Functionbeat, some Firehose transforms)."""
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ParseError("VPC flow line starts with '{' but is not JSON") from None
        message = obj.get("message") if isinstance(obj, dict) else None
        if not isinstance(message, str):
            raise ParseError("VPC flow JSON line has no string 'message' field")
        return message

    def _header(self, values: list[str]) -> None:
        try:
            names = normalize_format(" ".join(values))
            fmt = _DEFAULT if names == _DEFAULT.names else _Format(names)
        except ValueError as exc:
            raise ParseError(f"VPC flow header line: {exc}") from None
        for name in names:
            if not name.replace("-", "").isalnum():
                raise ParseError(f"VPC flow header line has a field name that is not one: {name!r}")
        self._format = fmt

    def _default_document(self, v: list[str], original: str) -> dict[str, Any]:
        """`_document` for the AWS default format with every column present, built in one expression.

        Most flow logs are in the default format, and nearly all of their lines carry every value; one dict
        display costs less than half of the general path's column-by-column checks (tests/unit/
        test_parser_vpc_flow.py holds the two to the same output)."""
        version, account, eni, src, dst, sport, dport, proto, packets, size, start, end, action, status = v
        transport = IANA_PROTOCOLS.get(proto)
        if transport is None and not proto.isdigit():
            raise ParseError(f"VPC flow field protocol: not a protocol number: {proto!r}")
        # The capture-window bounds repeat on thousands of lines: their cache is read here, not through a call.
        started = EPOCH_CACHE.get(start)
        ended = EPOCH_CACHE.get(end)
        if started is None or ended is None:
            try:
                started = epoch_to_iso(start)
                ended = epoch_to_iso(end)
            except ValueError as exc:
                raise ParseError(f"VPC flow start/end: {exc}") from None
        try:
            n_packets, n_bytes, n_sport, n_dport = int(packets), int(size), int(sport), int(dport)
        except ValueError:
            return self._document(_DEFAULT, v, original)  # raises the ParseError that names the column
        network: dict[str, Any] = {"type": "ipv6" if ":" in src else "ipv4", "iana_number": proto}
        if transport is not None:
            network["transport"] = transport
        network["packets"] = n_packets
        network["bytes"] = n_bytes
        region = self._region
        cloud: dict[str, Any] = ({"provider": "aws", "account": {"id": account}, "region": region} if region
                                 else {"provider": "aws", "account": {"id": account}})
        outcome = _OUTCOME_OF.get(action)
        event: dict[str, Any] = (
            {"kind": "event", "category": ["network"], "type": ["connection"], "start": started, "end": ended,
             "outcome": outcome} if outcome is not None
            else {"kind": "event", "category": ["network"], "type": ["connection"], "start": started, "end": ended}
        )
        return {
            "event": event,
            "cloud": cloud,
            "aws": {"vpcflow": {"version": version, "interface_id": eni, "log_status": status, "action": action,
                                "account_id": account}},
            "source": {"address": src, "ip": src, "port": n_sport, "packets": n_packets, "bytes": n_bytes},
            "destination": {"address": dst, "ip": dst, "port": n_dport},
            "related": {"ip": [src, dst]},
            "network": network,
            "@timestamp": ended,
        }

    def _document(self, fmt: _Format, v: list[str], original: str) -> dict[str, Any]:
        vpc: dict[str, Any] = {}
        for i, key in fmt.plain:
            value = v[i]
            if value != "-":
                vpc[key] = value
        event: dict[str, Any] = {"kind": "event", "category": ["network"], "type": ["connection"]}
        cloud: dict[str, Any] = {"provider": "aws"}
        doc: dict[str, Any] = {"event": event, "cloud": cloud, "aws": {"vpcflow": vpc}}

        source: dict[str, Any] = {}
        destination: dict[str, Any] = {}
        network: dict[str, Any] = {}
        src_ip = dst_ip = None
        i = fmt.srcaddr
        if i >= 0 and (value := v[i]) != "-":
            source["address"] = source["ip"] = src_ip = value
            network["type"] = "ipv6" if ":" in value else "ipv4"
        i = fmt.dstaddr
        if i >= 0 and (value := v[i]) != "-":
            destination["address"] = destination["ip"] = dst_ip = value
        i = fmt.srcport
        if i >= 0 and (value := v[i]) != "-":
            source["port"] = _int(value, "srcport")
        i = fmt.dstport
        if i >= 0 and (value := v[i]) != "-":
            destination["port"] = _int(value, "dstport")
        i = fmt.protocol
        if i >= 0 and (value := v[i]) != "-":
            network["iana_number"] = value
            name = IANA_PROTOCOLS.get(value)
            if name is not None:
                network["transport"] = name
            elif not value.isdigit():
                raise ParseError(f"VPC flow field protocol: not a protocol number: {value!r}")
        i = fmt.packets
        if i >= 0 and (value := v[i]) != "-":
            source["packets"] = network["packets"] = _int(value, "packets")
        i = fmt.bytes
        if i >= 0 and (value := v[i]) != "-":
            source["bytes"] = network["bytes"] = _int(value, "bytes")
        i = fmt.direction
        if i >= 0 and (value := v[i]) != "-":
            network["direction"] = value
        if source:
            doc["source"] = source
        if destination:
            doc["destination"] = destination
        if src_ip is not None and dst_ip is not None:
            doc["related"] = {"ip": [src_ip, dst_ip]}
            if self._community_id and "iana_number" in network and "port" in source and "port" in destination:
                cid = community_id(
                    src_ip, dst_ip, int(network["iana_number"]), source["port"], destination["port"]
                )
                if cid is not None:
                    network["community_id"] = cid
        if network:
            doc["network"] = network

        try:
            i = fmt.start
            if i >= 0 and (value := v[i]) != "-":
                event["start"] = epoch_to_iso(value)
            i = fmt.end
            if i >= 0 and (value := v[i]) != "-":
                doc["@timestamp"] = event["end"] = epoch_to_iso(value)
            elif "start" in event:
                doc["@timestamp"] = event["start"]
        except ValueError as exc:
            raise ParseError(f"VPC flow start/end: {exc}") from None

        i = fmt.action
        if i >= 0 and (value := v[i]) != "-":
            vpc["action"] = value
            if value == "ACCEPT":
                event["outcome"] = "success"
            elif value == "REJECT":
                event["outcome"] = "failure"
        i = fmt.account
        if i >= 0 and (value := v[i]) != "-":
            vpc["account_id"] = value
            cloud["account"] = {"id": value}
        elif self.ctx.account_id:
            cloud["account"] = {"id": self.ctx.account_id}
        i = fmt.instance
        if i >= 0 and (value := v[i]) != "-":
            vpc["instance_id"] = value
            cloud["instance"] = {"id": value}
        i = fmt.region
        if i >= 0 and (value := v[i]) != "-":
            cloud["region"] = value
        elif self.ctx.region:
            cloud["region"] = self.ctx.region
        i = fmt.az
        if i >= 0 and (value := v[i]) != "-":
            cloud["availability_zone"] = value
        i = fmt.tcp_flags
        if i >= 0 and (value := v[i]) != "-":
            vpc["tcp_flags"] = value
            try:
                vpc["tcp_flags_array"] = _tcp_flags_array(value)
            except ValueError:
                raise ParseError(f"VPC flow field tcp-flags: not an integer: {value!r}") from None
        i = fmt.pkt_src_svc
        if i >= 0 and (value := v[i]) != "-":
            vpc["pkt_src_service"] = value
        i = fmt.pkt_dst_svc
        if i >= 0 and (value := v[i]) != "-":
            vpc["pkt_dst_service"] = value
        if fmt.subloc_type >= 0 or fmt.subloc_id >= 0:
            sub = {}
            if fmt.subloc_type >= 0 and (value := v[fmt.subloc_type]) != "-":
                sub["type"] = value
            if fmt.subloc_id >= 0 and (value := v[fmt.subloc_id]) != "-":
                sub["id"] = value
            if sub:
                vpc["sublocation"] = sub
        for i, key in fmt.longs:
            if (value := v[i]) != "-":
                vpc[key] = _int(value, key)
        if self.ctx.keep_original:
            event["original"] = original
        return doc


PARSER = VpcFlowParser
