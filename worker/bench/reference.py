"""The reference ceiling: the least Python that does the worker's job for one log type, in one fused loop.

gzip bytes -> isal inflate in chunks -> lines (or the `Records` of a CloudTrail file) -> the same document the
Sluice parser builds for that record -> `orjson.dumps` -> NDJSON bulk bodies (`create` action line with index
and id, then the document) of about 5 MB -> gzip level 1 (as the worker's `opensearch.bulk.compress`, on by
default). No framing classes, no offsets in bytes, no per-record error handling beyond a fallback for absent
(`-`) values, no asyncio, no network: what is left is the floor any Python implementation pays per record,
so `sluice / reference` says how much of the worker's time goes to everything else.

The mappers return the same documents as Sluice's parsers on well-formed records of the benchmark's generated
shape (tests/unit/test_bench.py holds them to it); on unusual records (other VPC flow formats, connection-log
ALB lines, quoted quotes) they are simpler and may differ. They use their own small helpers, not the parsers'.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from isal import igzip, isal_zlib

from worker.routing import route_s3_key

BULK_BYTES = 5 << 20
"""A bulk body is cut at this many uncompressed bytes (the worker's `opensearch.bulk.max_bytes` default)."""
CHUNK = 1 << 20
"""Compressed bytes inflated per step, like the worker's `pipeline.read_chunk_bytes`."""

Mapper = Callable[[Any], "dict[str, Any] | None"]


@dataclass(slots=True)
class ReferenceResult:
    documents: int = 0
    failures: int = 0
    """Records the reference could not map (none on the generated inputs)."""
    raw_bytes: int = 0
    bodies: int = 0
    body_bytes: int = 0
    """Uncompressed NDJSON bytes produced."""
    sent_bytes: int = 0
    """What would go on the wire (gzip'd when compressing)."""
    seconds: float = 0.0
    cpu_seconds: float = 0.0


# --- small helpers (cached: logs repeat timestamps, hosts and protocol names) ------------------------------

_EPOCH: dict[str, str] = {}


def _epoch(value: str) -> str:
    out = _EPOCH.get(value)
    if out is None:
        out = datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if len(_EPOCH) > 4096:
            _EPOCH.clear()
        _EPOCH[value] = out
    return out


def _iso_ms(value: str) -> str:
    """`...T..:..:..[.ffffff]Z` -> millisecond precision; other shapes go through datetime."""
    n = len(value)
    if value[-1:] == "Z" and n >= 20 and value[10:11] == "T":
        if n == 20:
            return value[:19] + ".000Z"
        if value[19] == "." and n >= 24:
            return value[:23] + "Z"
    dt = datetime.fromisoformat(value).astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_CLF: dict[str, str] = {}


def _clf_time(day: str) -> str:
    """`[22/Nov/2026:00:00:38` (zone +0000) -> `2026-11-22T00:00:38.000Z`."""
    out = _CLF.get(day)
    if out is None:
        out = f"{day[8:12]}-{_MONTHS[day[4:7]]}-{day[1:3]}T{day[13:21]}.000Z"
        if len(_CLF) > 4096:
            _CLF.clear()
        _CLF[day] = out
    return out


_PROTOCOLS = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp", "58": "ipv6-icmp", "132": "sctp"}
_TLS: dict[str, tuple[str, str] | None] = {}


def _tls(value: str) -> tuple[str, str] | None:
    """`TLSv1.2` -> (`tls`, `1.2`)."""
    try:
        return _TLS[value]
    except KeyError:
        name, sep, number = value.lower().partition("v")
        out = (name, number if "." in number else number + ".0") if sep and number else None
        _TLS[value] = out
        return out


_HOST_REGION: dict[str, str] = {}


def _host_region(host: str) -> str:
    region = _HOST_REGION.get(host)
    if region is None:
        labels = host.split(".")
        region = ""
        if "amazonaws" in labels:
            i = labels.index("amazonaws")
            label = labels[i - 1] if i else ""
            if label.count("-") >= 2 and label[-1:].isdigit():
                region = label.removeprefix("s3-")
        _HOST_REGION[host] = region
    return region


def _url(url: str) -> dict[str, Any]:
    """`scheme://host[:port]/path?query` or `/path?query` -> ECS `url.*` (no user info, no fragment)."""
    out: dict[str, Any] = {"original": url}
    scheme, sep, rest = url.partition("://")
    if sep:
        slash = rest.find("/")
        hostport, tail = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        host, colon, port = hostport.partition(":")
        if colon:
            out["port"] = int(port)
        out["domain"] = host
        out["scheme"] = scheme
    else:
        tail = url
    path, _, query = tail.partition("?")
    if path:
        out["path"] = path
        last = path.rpartition("/")[2]
        dot = last.rfind(".")
        if 0 <= dot < len(last) - 1:
            out["extension"] = last[dot + 1 :]
    if query:
        out["query"] = query
    return out


# --- mappers: one record -> the document ----------------------------------------------------------------


def vpc_flow_mapper(account: str, region: str) -> Mapper:
    """Default-format (v2, 14 columns) flow records; header lines and other layouts yield None."""
    del account  # the records carry their own

    def dashed(v: list[str]) -> dict[str, Any]:
        vpc: dict[str, Any] = {}
        for name, value in (("version", v[0]), ("interface_id", v[2]), ("log_status", v[13])):
            if value != "-":
                vpc[name] = value
        event: dict[str, Any] = {"kind": "event", "category": ["network"], "type": ["connection"]}
        cloud: dict[str, Any] = {"provider": "aws"}
        doc: dict[str, Any] = {"event": event, "cloud": cloud, "aws": {"vpcflow": vpc}}
        if v[10] != "-":
            event["start"] = _epoch(v[10])
        if v[11] != "-":
            doc["@timestamp"] = event["end"] = _epoch(v[11])
        elif "start" in event:
            doc["@timestamp"] = event["start"]
        if v[12] != "-":
            vpc["action"] = v[12]
            event["outcome"] = "success" if v[12] == "ACCEPT" else "failure"
        if v[1] != "-":
            vpc["account_id"] = v[1]
            cloud["account"] = {"id": v[1]}
        if region:
            cloud["region"] = region
        return doc

    def parse(line: str) -> dict[str, Any] | None:
        v = line.split(" ")
        if len(v) != 14 or v[0] == "version":
            return None
        if "-" in v:
            return dashed(v)
        version, acct, eni, src, dst, sport, dport, proto, packets, size, start, end, action, status = v
        pk = int(packets)
        by = int(size)
        ts = _epoch(end)
        network: dict[str, Any] = {"type": "ipv6" if ":" in src else "ipv4", "iana_number": proto}
        transport = _PROTOCOLS.get(proto)
        if transport is not None:
            network["transport"] = transport
        network["packets"] = pk
        network["bytes"] = by
        return {
            "event": {"kind": "event", "category": ["network"], "type": ["connection"], "start": _epoch(start),
                      "end": ts, "outcome": "success" if action == "ACCEPT" else "failure"},
            "cloud": {"provider": "aws", "account": {"id": acct}, "region": region},
            "aws": {"vpcflow": {"version": version, "interface_id": eni, "log_status": status, "action": action,
                                "account_id": acct}},
            "source": {"address": src, "ip": src, "port": int(sport), "packets": pk, "bytes": by},
            "destination": {"address": dst, "ip": dst, "port": int(dport)},
            "related": {"ip": [src, dst]},
            "network": network,
            "@timestamp": ts,
        }

    return parse


def _seconds(value: str) -> float | None:
    return None if value == "-1" or value == "-" else float(value)


def alb_mapper(account: str, region: str) -> Mapper:
    """ALB access-log lines (no escaped quotes); connection-log lines are not handled."""
    cloud_region = region

    def parse(line: str) -> dict[str, Any] | None:
        parts = line.split('"')
        t = parts[0].split()
        for i in range(1, len(parts), 2):
            t.append(parts[i])
            tail = parts[i + 1]
            if tail != " ":
                t.extend(tail.split())
        n = len(t)
        if n < 18:
            return None
        ts = _iso_ms(t[1])
        event: dict[str, Any] = {"kind": "event", "category": ["web"], "end": ts}
        elb: dict[str, Any] = {"name": t[2], "type": t[0], "protocol": "http"}
        doc: dict[str, Any] = {"@timestamp": ts, "event": event, "aws": {"elb": elb}}
        host, _, port = t[3].rpartition(":")
        doc["source"] = {"address": host, "ip": host, "port": int(port)}
        if t[4] != "-":
            host, _, port = t[4].rpartition(":")
            elb["backend"] = {"ip": host, "port": port}
        if (sec := _seconds(t[5])) is not None:
            elb["request_processing_time"] = {"sec": sec}
        if (sec := _seconds(t[6])) is not None:
            elb["backend_processing_time"] = {"sec": sec}
        if (sec := _seconds(t[7])) is not None:
            elb["response_processing_time"] = {"sec": sec}
        request: dict[str, Any] = {}
        response: dict[str, Any] = {}
        http: dict[str, Any] = {}
        if t[8] != "-":
            status = int(t[8])
            response["status_code"] = status
            event["outcome"] = "success" if status < 400 else "failure"
        if t[9] != "-":
            elb.setdefault("backend", {})["http"] = {"response": {"status_code": int(t[9])}}
        if t[10] != "-":
            request["body"] = {"bytes": int(t[10])}
        if t[11] != "-":
            response["body"] = {"bytes": int(t[11])}
        method, _, rest = t[12].partition(" ")
        url, _, version = rest.rpartition(" ")
        if method != "-":
            request["method"] = method
        if version[:5] == "HTTP/":
            http["version"] = version[5:]
        if url and url != "-":
            doc["url"] = _url(url)
        if request:
            http["request"] = request
        if response:
            http["response"] = response
        if http:
            doc["http"] = http
        if t[13] != "-" and t[13]:
            doc["user_agent"] = {"original": t[13]}
        if t[14] != "-":
            elb["ssl_cipher"] = t[14]
            doc["tls"] = {"cipher": t[14]}
        if t[15] != "-":
            elb["ssl_protocol"] = t[15]
            if (parsed := _tls(t[15])) is not None:
                tls = doc.setdefault("tls", {})
                tls["version_protocol"], tls["version"] = parsed
        if t[16] != "-":
            elb["target_group"] = {"arn": t[16]}
        cloud: dict[str, Any] = {"provider": "aws"}
        if account:
            cloud["account"] = {"id": account}
        if cloud_region:
            cloud["region"] = cloud_region
        doc["cloud"] = cloud
        if t[17] != "-":
            elb["trace_id"] = t[17]
            doc["trace"] = {"id": t[17]}
        if n > 18 and t[18] != "-":
            doc["destination"] = {"domain": t[18]}
        if n > 19 and t[19] != "-":
            elb["chosen_cert"] = {"arn": t[19]}
        if n > 20 and t[20] != "-" and t[20] != "-1":
            elb["matched_rule_priority"] = t[20]
        if n > 21 and t[21] != "-":
            event["start"] = _iso_ms(t[21])
        if n > 22 and t[22] != "-":
            elb["action_executed"] = t[22].split(",")
        if n > 23 and t[23] != "-":
            elb["redirect_url"] = t[23]
        if n > 24 and t[24] != "-":
            elb["error"] = {"reason": t[24]}
        if n > 25 and t[25] != "-":
            elb["target_port"] = t[25].split()
        if n > 26 and t[26] != "-":
            elb["target_status_code"] = t[26].split()
        if n > 27 and t[27] != "-":
            elb["classification"] = t[27]
        if n > 28 and t[28] != "-":
            elb["classification_reason"] = t[28]
        if n > 29 and t[29] != "-":
            elb["connection_trace_id"] = t[29]
        return doc

    return parse


def s3_access_mapper(account: str, region: str) -> Mapper:
    """S3 server access log lines whose only quoted columns are the request, referrer and user agent."""

    def parse(line: str) -> dict[str, Any] | None:
        parts = line.split('"')
        if len(parts) != 7:
            return None
        t = parts[0].split(" ")
        t[9] = parts[1]
        t += parts[2].split(" ")[1:7]
        t.append(parts[3])
        t.append(parts[5])
        t += parts[6][1:].split(" ")
        n = len(t)
        owner, ip = t[0], t[4]
        s3: dict[str, Any] = {"bucket_owner": owner, "bucket": t[1]}
        event: dict[str, Any] = {"kind": "event", "category": ["web"], "type": ["access"]}
        doc: dict[str, Any] = {"@timestamp": _clf_time(t[2]), "event": event, "aws": {"s3access": s3}}
        s3["remote_ip"] = ip
        doc["client"] = {"address": ip, "ip": ip, "user": {"id": t[5]}}
        s3["requester"] = t[5]
        s3["request_id"] = event["id"] = t[6]
        s3["operation"] = event["action"] = t[7]
        if t[8] != "-":
            s3["key"] = t[8]
        http: dict[str, Any] = {}
        response: dict[str, Any] = {}
        uri = t[9]
        if uri != "-":
            s3["request_uri"] = uri
            method, target, version = uri.split(" ")
            http["request"] = {"method": method}
            http["version"] = version[5:]
            doc["url"] = _url(target)
        if t[10] != "-":
            s3["http_status"] = response["status_code"] = int(t[10])
        if t[11] != "-":
            s3["error_code"] = event["code"] = t[11]
            event["outcome"] = "failure"
        else:
            event["outcome"] = "success"
        if t[12] != "-":
            s3["bytes_sent"] = size = int(t[12])
            response["body"] = {"bytes": size}
        if t[13] != "-":
            s3["object_size"] = int(t[13])
        if t[14] != "-":
            s3["total_time"] = ms = int(t[14])
            event["duration"] = ms * 1_000_000
        if t[15] != "-":
            s3["turn_around_time"] = int(t[15])
        if t[16] != "-":
            s3["referrer"] = t[16]
            http.setdefault("request", {})["referrer"] = t[16]
        if t[17] != "-":
            s3["user_agent"] = t[17]
            doc["user_agent"] = {"original": t[17]}
        if response:
            http["response"] = response
        if http:
            doc["http"] = http
        host_region = ""
        if n > 18 and t[18] != "-":
            s3["version_id"] = t[18]
        if n > 19 and t[19] != "-":
            s3["host_id"] = t[19]
        if n > 20 and t[20] != "-":
            s3["signature_version"] = t[20]
        if n > 21 and t[21] != "-":
            s3["cipher_suite"] = t[21]
            doc["tls"] = {"cipher": t[21]}
        if n > 22 and t[22] != "-":
            s3["authentication_type"] = t[22]
        if n > 23 and t[23] != "-":
            s3["host_header"] = t[23]
            host_region = _host_region(t[23])
        if n > 24 and t[24] != "-":
            s3["tls_version"] = t[24]
            if (parsed := _tls(t[24])) is not None:
                tls = doc.setdefault("tls", {})
                tls["version_protocol"], tls["version"] = parsed
        if n > 25 and t[25] != "-":
            s3["access_point_arn"] = t[25]
        if n > 26 and t[26] != "-":
            s3["aclrequired"] = t[26]
        doc["related"] = {"user": [owner], "ip": [ip]}
        cloud: dict[str, Any] = {"provider": "aws"}
        if account:
            cloud["account"] = {"id": account}
        if host_region or region:
            cloud["region"] = host_region or region
        doc["cloud"] = cloud
        return doc

    return parse


_CT_SCALARS = (
    ("eventVersion", "event_version"), ("eventCategory", "event_category"), ("errorCode", "error_code"),
    ("errorMessage", "error_message"), ("requestID", "request_id"), ("eventType", "event_type"),
    ("apiVersion", "api_version"), ("managementEvent", "management_event"), ("readOnly", "read_only"),
    ("recipientAccountId", "recipient_account_id"), ("sharedEventID", "shared_event_id"),
    ("vpcEndpointId", "vpc_endpoint_id"),
)
_CT_OBJECTS = (
    ("requestParameters", "request_parameters"), ("responseElements", "response_elements"),
    ("additionalEventData", "additional_eventdata"), ("serviceEventDetails", "service_event_details"),
)
_CT_CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    "ConsoleLogin": (["authentication"], ["info"]), "AssumeRole": (["authentication"], ["info"]),
    "CreateUser": (["iam"], ["user", "creation"]), "DeleteUser": (["iam"], ["user", "deletion"]),
    "CreateBucket": (["file"], ["creation"]), "DeleteBucket": (["file"], ["deletion"]),
}


def cloudtrail_mapper(account: str, region: str) -> Mapper:
    """One record of a CloudTrail file (identity without session context, no resources or TLS details)."""

    def parse(record: dict[str, Any]) -> dict[str, Any] | None:
        ct: dict[str, Any] = {}
        event: dict[str, Any] = {"kind": "event", "type": ["info"]}
        cloud: dict[str, Any] = {"provider": "aws"}
        doc: dict[str, Any] = {"@timestamp": _iso_ms(record["eventTime"]), "event": event, "cloud": cloud,
                               "aws": {"cloudtrail": ct}}
        get = record.get
        for key, name in _CT_SCALARS:
            value = get(key)
            if value is not None and value != "":
                ct[name] = value
        for key, name in _CT_OBJECTS:
            value = get(key)
            if value:
                ct[name] = value
        if (value := get("eventID")) is not None:
            event["id"] = value
        action = get("eventName")
        if action:
            event["action"] = action
        if provider := get("eventSource"):
            event["provider"] = provider
        if where := (get("awsRegion") or region):
            cloud["region"] = where
        if address := get("sourceIPAddress"):
            doc["source"] = {"address": address, "ip": address} if address[:1].isdigit() else {"address": address}
        if agent := get("userAgent"):
            doc["user_agent"] = {"original": agent}
        user: dict[str, Any] = {}
        identity = get("userIdentity")
        if identity:
            out: dict[str, Any] = {}
            if value := identity.get("type"):
                out["type"] = value
            if value := identity.get("arn"):
                out["arn"] = value
            if value := identity.get("accessKeyId"):
                out["access_key_id"] = value
            if value := identity.get("principalId"):
                user["id"] = value
            if value := identity.get("userName"):
                user["name"] = value
                doc["related"] = {"user": [value]}
            if value := identity.get("accountId"):
                cloud["account"] = {"id": value}
            if out:
                ct["user_identity"] = out
        if "account" not in cloud and (value := get("recipientAccountId") or account):
            cloud["account"] = {"id": value}
        if user:
            doc["user"] = user
        event["outcome"] = "failure" if "error_code" in ct or "error_message" in ct else "success"
        categorised = _CT_CATEGORIES.get(action) if action else None
        if categorised is not None:
            event["category"] = list(categorised[0])
            event["type"] = list(categorised[1])
        return doc

    return parse


MAPPERS: dict[str, Callable[[str, str], Mapper]] = {
    "vpc_flow": vpc_flow_mapper,
    "alb": alb_mapper,
    "s3_access": s3_access_mapper,
    "cloudtrail": cloudtrail_mapper,
}


def id_prefix(bucket: str, key: str, version: str) -> str:
    """The worker's document id prefix for an object (same hash as `worker.model.Origin.id_prefix`)."""
    digest = hashlib.blake2b(f"{bucket}\x00{key}\x00{version}".encode(), digest_size=15).digest()
    return base64.urlsafe_b64encode(digest).decode()


# --- the fused loop -----------------------------------------------------------------------------------------


def _inflate(body: bytes, result: ReferenceResult) -> Iterator[bytes]:
    """Decompressed pieces of a gzip body, member after member (Firehose-style files have many)."""
    inflater = isal_zlib.decompressobj(31)
    for start in range(0, len(body), CHUNK):
        data = body[start : start + CHUNK]
        while data:
            out = inflater.decompress(data)
            result.raw_bytes += len(out)
            yield out
            data = b""
            if inflater.eof and inflater.unused_data:
                data = inflater.unused_data
                inflater = isal_zlib.decompressobj(31)


def _json_records(data: bytes) -> list[Any]:
    """The records of a `{"Records": [...]}` file, or of NDJSON (one record or one such file per line)."""
    try:
        docs = [orjson.loads(data)]
    except orjson.JSONDecodeError:
        docs = [orjson.loads(line) for line in data.splitlines() if line.strip()]
    records: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
            records.extend(doc["Records"])
        else:
            records.append(doc)
    return records


def run_object(log_type: str, key: str, body: bytes, result: ReferenceResult, *, compress: bool = True,
               bucket: str = "bench", index_pattern: str = "sluice-{log_type}-") -> None:
    """Inflate, map, serialise and batch one object into `result` (timed by the caller)."""
    route = route_s3_key(key, log_type)
    mapper = MAPPERS[log_type](route.account_id, route.region)
    prefix = id_prefix(bucket, key, "etag:bench").encode() + b"."
    index_base = index_pattern.replace("{log_type}", log_type)
    indices: dict[str, bytes] = {}
    dumps = orjson.dumps
    out = bytearray()

    def cut() -> None:
        result.bodies += 1
        result.body_bytes += len(out)
        result.sent_bytes += len(igzip.compress(out, compresslevel=1)) if compress else len(out)
        del out[:]

    def add(offset: int, doc: dict[str, Any]) -> None:
        day = doc.get("@timestamp", "")[:10]
        index = indices.get(day)
        if index is None:
            index = indices[day] = (index_base + day.replace("-", ".")).encode()
        out.extend(b'{"create":{"_index":"%s","_id":"%s%d"}}\n' % (index, prefix, offset))
        out.extend(dumps(doc))
        out.extend(b"\n")
        result.documents += 1
        if len(out) >= BULK_BYTES:
            cut()

    def one(offset: int, record: Any) -> None:
        try:
            doc = mapper(record)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            result.failures += 1  # a shape the reference does not know (Sluice's parsers may)
            return
        if doc is not None:
            add(offset, doc)

    if log_type == "cloudtrail":
        for i, record in enumerate(_json_records(b"".join(_inflate(body, result)))):
            one(i, record)
    else:
        rest = b""
        offset = 0
        for data in _inflate(body, result):
            data = rest + data
            end = data.rfind(b"\n")
            if end < 0:
                rest = data
                continue
            rest = data[end + 1 :]
            for line in data[:end].decode("utf-8", "replace").split("\n"):
                if line:
                    one(offset, line)
                offset += len(line) + 1
        if rest.strip():
            one(offset, rest.decode("utf-8", "replace"))
    if out:
        cut()


def run(log_type: str, objects: list[tuple[str, bytes]], *, compress: bool = True) -> ReferenceResult:
    """The reference loop over (key, gzip body) objects, timed as a whole (wall and this process's CPU)."""
    result = ReferenceResult()
    wall, cpu = time.perf_counter(), time.process_time()
    for key, body in objects:
        run_object(log_type, key, body, result, compress=compress)
    result.seconds = time.perf_counter() - wall
    result.cpu_seconds = time.process_time() - cpu
    return result
