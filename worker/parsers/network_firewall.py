"""AWS Network Firewall flow, alert and TLS logs -> ECS, with the field names of Elastic's `aws.firewall_logs`.

A record is `{"firewall_name", "availability_zone", "event_timestamp", "event": {...}}`; `event` is a Suricata
EVE object (`event_type` `netflow` or `alert`) or, for TLS-inspection logs, a similar object from AWS's own
TLS engine (no `event_type`, ports as strings, `sni`, `tls_error`, `revocation_check`).

Elastic's mapping is followed: `observer.*` for the firewall, `cloud.availability_zone` and the region derived
from it, `event.kind` `alert` for alerts and `event` otherwise, `event.type` `connection` plus `denied` /
`allowed` from the alert action, `rule.*` from the alert signature, `aws.firewall.flow.*` from `netflow` (its
`start`/`end` normalised to UTC milliseconds; they are dates), `aws.firewall.tcp_flags` and its decoded list
`tcp_flags_array`, `network.protocol` from `app_proto` (`unknown` when absent or `failed`), `network.community_id`
for TCP/UDP/SCTP. Deliberate differences: the TCP flags are decoded as the hexadecimal Suricata writes (`1b` is
SYN FIN PSH ACK; Elastic's pipeline reads them as decimal and fails on `1b`), JA3 hashes go to
`tls.client.ja3` / `tls.server.ja3s` (Elastic writes the client hash to `tls.server.ja3`), the certificate
serial, subject, issuer and fingerprint are kept (Elastic's pipeline loses them to reversed renames), and the
alert category, empty in every sample, is not copied to `message`.

Fields this parser does not map (new Suricata app-layer objects, new keys inside `http`, `tls`, `dns`,
`alert`) are kept under `aws.firewall.unmapped` (flattened), keyed as in the record.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from worker.parsers._fields import ABSENT, community_id, epoch_to_iso, is_ip, iso_to_utc_ms, tls_version
from worker.parsers._json_records import json_head, json_original, present, reroute_sibling
from worker.parsers.base import FieldType, LogParser, ParseError

_REGION_OF_ZONE = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+)(?:-[a-z]+-\d+)?[a-z]$")
"""`us-east-2a` -> `us-east-2`; Local Zones (`us-west-2-lax-1a`) -> `us-west-2`."""
_ZONE_REGIONS: dict[str, str] = {}

_PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58, "gre": 47,
                     "esp": 50, "ah": 51}
_TCP_FLAGS = ((0x01, "fin"), (0x02, "syn"), (0x04, "rst"), (0x08, "psh"), (0x10, "ack"), (0x20, "urg"),
              (0x40, "ece"), (0x80, "cwr"))
_EVENT_KEYS = frozenset((
    "timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "app_proto",
    "alert", "http", "tls", "dns", "netflow", "tcp", "verdict", "direction", "pkt_src", "tls_inspected",
    "icmp_type", "icmp_code", "sni", "tls_error", "revocation_check",
))
_RECORD_KEYS = frozenset(("firewall_name", "availability_zone", "event_timestamp", "event"))
_ALERT_KEYS = frozenset(("action", "signature_id", "rev", "signature", "category", "severity"))
_HTTP_KEYS = frozenset(("hostname", "url", "http_user_agent", "http_method", "protocol", "length", "status",
                        "http_refer", "http_content_type"))
_TLS_KEYS = frozenset(("sni", "version", "subject", "issuerdn", "serial", "fingerprint", "notbefore",
                       "notafter", "ja3", "ja3s"))
_FLOW_LONGS = ("pkts", "bytes", "age", "min_ttl", "max_ttl")
_ACTION_TYPES = {"blocked": "denied", "allowed": "allowed"}
_DENYING_ACTIONS = frozenset(("DROP", "REJECT"))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _date(value: Any) -> str | None:
    """Suricata's `2021-11-08T18:18:11.990632+0000` (or `...Z`) -> UTC milliseconds; None when unreadable."""
    if not isinstance(value, str) or not value:
        return None
    if (
        len(value) == 31
        and value[26:] == "+0000"
        and value[19] == "."
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
        and (value[:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19] + value[20:26]).isdigit()
        and "01" <= value[5:7] <= "12"
        and "01" <= value[8:10] <= "31"
        and value[11:13] <= "23"
        and value[14:16] <= "59"
        and value[17:19] <= "60"
    ):
        return value[:23] + "Z"  # the form Suricata always writes, without datetime
    try:
        return iso_to_utc_ms(value)
    except ValueError:
        return None


def _url_parts(original: str) -> dict[str, Any]:
    """Elastic's `uri_parts` for the request target Suricata logs (usually a path, sometimes absolute)."""
    url: dict[str, Any] = {"original": original}
    rest = original
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        if scheme:
            url["scheme"] = scheme
        authority, slash, path = rest.partition("/")
        rest = slash + path
        host, colon, port = authority.rpartition("@")[2].partition(":")
        if host:
            url["domain"] = host
        if colon and port.isdigit():
            url["port"] = int(port)
    rest, hash_, fragment = rest.partition("#")
    if hash_ and fragment:
        url["fragment"] = fragment
    path, question, query = rest.partition("?")
    if path:
        url["path"] = path
        last = path.rpartition("/")[2]
        if "." in last and not last.endswith("."):
            url["extension"] = last.rpartition(".")[2]
    if question and query:
        url["query"] = query
    return url


class NetworkFirewallParser(LogParser):
    """Stateless; one Network Firewall log record (a JSON object) at a time."""

    log_type: ClassVar[str] = "network_firewall"
    framing = "json_records"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.kind": "keyword",
        "event.category": "keyword",
        "event.type": "keyword",
        "event.action": "keyword",
        "event.severity": "long",
        "cloud.provider": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "cloud.availability_zone": "keyword",
        "observer.name": "keyword",
        "observer.type": "keyword",
        "observer.vendor": "keyword",
        "observer.product": "keyword",
        "source.ip": "ip",
        "source.address": "keyword",
        "source.port": "long",
        "destination.ip": "ip",
        "destination.address": "keyword",
        "destination.port": "long",
        "destination.domain": "keyword",
        "related.ip": "ip",
        "related.hosts": "keyword",
        "network.transport": "keyword",
        "network.protocol": "keyword",
        "network.type": "keyword",
        "network.iana_number": "keyword",
        "network.community_id": "keyword",
        "rule.id": "keyword",
        "rule.name": "keyword",
        "rule.category": "keyword",
        "rule.version": "keyword",
        "http.request.method": "keyword",
        "http.request.referrer": "keyword",
        "http.request.mime_type": "keyword",
        "http.response.status_code": "long",
        "http.response.body.bytes": "long",
        "http.version": "keyword",
        "url.original": "keyword",
        "url.path": "keyword",
        "url.query": "keyword",
        "url.fragment": "keyword",
        "url.extension": "keyword",
        "url.scheme": "keyword",
        "url.domain": "keyword",
        "url.port": "long",
        "user_agent.original": "keyword",
        "tls.client.server_name": "keyword",
        "tls.client.ja3": "keyword",
        "tls.server.ja3s": "keyword",
        "tls.version": "keyword",
        "tls.version_protocol": "keyword",
        "tls.server.subject": "keyword",
        "tls.server.issuer": "keyword",
        "tls.server.hash.sha1": "keyword",
        "tls.server.x509.serial_number": "keyword",
        "tls.server.x509.not_before": "date",
        "tls.server.x509.not_after": "date",
        "dns.type": "keyword",
        "dns.id": "keyword",
        "dns.question.name": "keyword",
        "dns.question.type": "keyword",
        "dns.response_code": "keyword",
        "error.message": "text",
        "aws.firewall.event_type": "keyword",
        "aws.firewall.flow.id": "keyword",
        "aws.firewall.flow.pkts": "long",
        "aws.firewall.flow.bytes": "long",
        "aws.firewall.flow.start": "date",
        "aws.firewall.flow.end": "date",
        "aws.firewall.flow.age": "long",
        "aws.firewall.flow.min_ttl": "short",
        "aws.firewall.flow.max_ttl": "short",
        "aws.firewall.tcp_flags": "keyword",
        "aws.firewall.tcp_flags_array": "keyword",
        "aws.firewall.verdict.action": "keyword",
        "aws.firewall.direction": "keyword",
        "aws.firewall.pkt_src": "keyword",
        "aws.firewall.tls_inspected": "boolean",
        "aws.firewall.icmp_type": "integer",
        "aws.firewall.icmp_code": "integer",
        "aws.firewall.revocation_check.leaf_cert_fpr": "keyword",
        "aws.firewall.revocation_check.status": "keyword",
        "aws.firewall.revocation_check.action": "keyword",
        "aws.firewall.unmapped": "flattened",
    }
    example = (
        '{"firewall_name":"AWSNetworkFirewall","availability_zone":"us-east-2a","event_timestamp":"1636381332",'
        '"event":{"timestamp":"2021-11-08T14:22:12.637611+0000","flow_id":706471429191862,"event_type":"alert",'
        '"src_ip":"81.2.69.143","src_port":51254,"dest_ip":"216.160.83.57","dest_port":80,"proto":"TCP","alert":'
        '{"action":"blocked","signature_id":1000003,"rev":1,"signature":"Deny all other TCP traffic","category":'
        '"","severity":3},"http":{"hostname":"216.160.83.57","url":"/","http_user_agent":"Mozilla/5.0 (Macintosh;'
        ' Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/95.0.4638.69 Safari/537.36",'
        '"http_method":"GET","protocol":"HTTP/1.1","length":0},"app_proto":"http"}}'
    )
    routing = (
        "S3 key `AWSLogs/<account>/network-firewall/(flow|alert|tls)/<region>/...`; CloudWatch Logs groups "
        "named in the source's `log_groups`; content: a JSON object with `firewall_name` and `event`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        first = json_head(head)
        return '"firewall_name"' in first and '"event"' in first and '"availability_zone"' in first

    def parse(self, record: Any) -> dict[str, Any] | None:
        if not isinstance(record, dict):
            raise ParseError(f"Network Firewall record is a JSON {type(record).__name__}, not an object")
        ev = record.get("event")
        if not isinstance(ev, dict):
            reroute_sibling(record, self.log_type)
            if "firewall_name" not in record:
                raise ParseError("not a Network Firewall record: no firewall_name and no event object")
            raise ParseError("Network Firewall record has no event object")

        timestamp = _date(ev.get("timestamp"))
        if timestamp is None:
            seconds = record.get("event_timestamp")
            try:
                timestamp = epoch_to_iso(str(seconds)) if _int(seconds) is not None else None
            except ValueError:
                timestamp = None
        if timestamp is None:
            raise ParseError(
                f"Network Firewall record has no readable time (event.timestamp={ev.get('timestamp')!r}, "
                f"event_timestamp={record.get('event_timestamp')!r})"
            )

        firewall: dict[str, Any] = {}
        event_type = ev.get("event_type")
        tls_engine = event_type is None and ("tls_error" in ev or "revocation_check" in ev or "sni" in ev)
        if isinstance(event_type, str) and event_type:
            firewall["event_type"] = event_type
        elif tls_engine:
            firewall["event_type"] = "tls"
        types = ["connection"]
        event: dict[str, Any] = {
            "kind": "alert" if event_type == "alert" else "event",
            "category": ["network"],
            "type": types,
        }
        cloud: dict[str, Any] = {"provider": "aws"}
        observer: dict[str, Any] = {}
        if present(name := record.get("firewall_name")):
            observer["name"] = name
        observer.update(type="firewall", vendor="AWS", product="Network Firewall")
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "cloud": cloud, "observer": observer,
                               "aws": {"firewall": firewall}}
        zone = record.get("availability_zone")
        if isinstance(zone, str) and zone:
            cloud["availability_zone"] = zone
            region = _ZONE_REGIONS.get(zone)
            if region is None:
                m = _REGION_OF_ZONE.match(zone)
                region = m.group(1) if m else ""
                if len(_ZONE_REGIONS) < 4096:
                    _ZONE_REGIONS[zone] = region
            if region:
                cloud["region"] = region
        if "region" not in cloud and self.ctx.region:
            cloud["region"] = self.ctx.region
        if self.ctx.account_id:
            cloud["account"] = {"id": self.ctx.account_id}

        unmapped: dict[str, Any] = {}
        related_ip: list[str] = []
        src_ip = ev.get("src_ip")
        dst_ip = ev.get("dest_ip")
        src_port = _int(ev.get("src_port"))
        dst_port = _int(ev.get("dest_port"))
        source = _endpoint(src_ip, src_port, related_ip)
        if source:
            doc["source"] = source
        destination = _endpoint(dst_ip, dst_port, related_ip)
        if destination:
            doc["destination"] = destination
        related: dict[str, Any] = {}
        if related_ip:
            related["ip"] = related_ip
        doc["related"] = related

        network: dict[str, Any] = {}
        if "ip" in source:
            network["type"] = "ipv6" if ":" in source["ip"] else "ipv4"
        proto = ev.get("proto")
        number: int | None = None
        if isinstance(proto, str) and proto:
            transport = proto.lower()
            network["transport"] = transport
            number = _PROTOCOL_NUMBERS.get(transport)
        else:
            number = _int(proto)
        if number is not None:
            network["iana_number"] = str(number)
        app_proto = ev.get("app_proto")
        if present(app_proto) and app_proto != "failed":
            network["protocol"] = app_proto
        else:  # the TLS engine only sees TLS; Suricata writes no app_proto when it could not tell
            network["protocol"] = "tls" if tls_engine else "unknown"
        if (
            number is not None
            and src_port is not None
            and dst_port is not None
            and isinstance(src_ip, str)
            and isinstance(dst_ip, str)
            and (cid := community_id(src_ip, dst_ip, number, src_port, dst_port)) is not None
        ):
            network["community_id"] = cid
        if network:
            doc["network"] = network

        alert = ev.get("alert")
        if isinstance(alert, dict):
            self._alert(alert, doc, event, types, unmapped)
        http = ev.get("http")
        if isinstance(http, dict):
            self._http(http, doc, unmapped)
        tls = ev.get("tls")
        if isinstance(tls, dict):
            self._tls(tls, doc, unmapped)
        sni = ev.get("sni")
        if present(sni):
            doc.setdefault("tls", {})["client"] = {"server_name": sni}
            doc.setdefault("destination", {})["domain"] = sni
        dns = ev.get("dns")
        if isinstance(dns, dict):
            self._dns(dns, doc, unmapped)

        flow_id = ev.get("flow_id")
        flow: dict[str, Any] = {}
        netflow = ev.get("netflow")
        if isinstance(netflow, dict):
            for key, value in netflow.items():
                if not present(value):
                    continue
                if key in ("start", "end"):
                    flow[key] = _date(value) or value
                elif key in _FLOW_LONGS:
                    number = value if value.__class__ is int else _int(value)
                    flow[key] = value if number is None else number
                else:
                    flow[key] = value
        if flow_id is not None and flow_id != "":
            flow["id"] = str(flow_id)
        if flow:
            firewall["flow"] = flow
        tcp = ev.get("tcp")
        if isinstance(tcp, dict):
            flags = tcp.get("tcp_flags")
            if isinstance(flags, str) and flags:
                firewall["tcp_flags"] = flags
                try:
                    bits = int(flags, 16)
                except ValueError:
                    bits = -1
                if bits >= 0:
                    firewall["tcp_flags_array"] = [name for bit, name in _TCP_FLAGS if bits & bit]
            extra = {k: v for k, v in tcp.items() if k != "tcp_flags" and not isinstance(v, bool)}
            if extra:
                unmapped["tcp"] = extra

        verdict = ev.get("verdict")
        if isinstance(verdict, dict) and present(verdict_action := verdict.get("action")):
            firewall["verdict"] = {"action": verdict_action}
        for key in ("direction", "pkt_src"):
            if present(value := ev.get(key)):
                firewall[key] = value
        if isinstance(inspected := ev.get("tls_inspected"), bool):
            firewall["tls_inspected"] = inspected
        for key in ("icmp_type", "icmp_code"):
            if (code := _int(ev.get(key))) is not None:
                firewall[key] = code
        tls_error = ev.get("tls_error")
        if isinstance(tls_error, dict) and present(message := tls_error.get("error_message")):
            doc["error"] = {"message": message.strip() if isinstance(message, str) else message}
            event["outcome"] = "failure"
        revocation = ev.get("revocation_check")
        if isinstance(revocation, dict):
            check = {k: v for k, v in revocation.items() if present(v)}
            if check:
                firewall["revocation_check"] = check
                if check.get("action") in _DENYING_ACTIONS:
                    types.append("denied")

        if not _EVENT_KEYS.issuperset(ev):
            for key, value in ev.items():
                if key not in _EVENT_KEYS and present(value):
                    unmapped[key] = value
        if not _RECORD_KEYS.issuperset(record):
            for key, value in record.items():
                if key not in _RECORD_KEYS and present(value):
                    unmapped[key] = value
        if unmapped:
            firewall["unmapped"] = unmapped
        domain = doc.get("destination", {}).get("domain")
        if isinstance(domain, str) and not is_ip(domain):
            hosts = related.setdefault("hosts", [])
            if domain not in hosts:
                hosts.append(domain)
        if not related:
            del doc["related"]

        if self.ctx.keep_original:
            event["original"] = json_original(record)
        return doc

    @staticmethod
    def _alert(alert: dict[str, Any], doc: dict[str, Any], event: dict[str, Any], types: list[str],
               unmapped: dict[str, Any]) -> None:
        action = alert.get("action")
        if isinstance(action, str) and action:
            event["action"] = action
            if (kind := _ACTION_TYPES.get(action)) is not None:
                types.append(kind)
        rule: dict[str, Any] = {}
        if present(value := alert.get("category")):
            rule["category"] = value
        if (value := alert.get("signature_id")) is not None and value != "":
            rule["id"] = str(value)
        if present(value := alert.get("signature")):
            rule["name"] = value
        elif "id" in rule:
            rule["name"] = rule["id"]
        if (value := alert.get("rev")) is not None and value != "":
            rule["version"] = str(value)
        if rule:
            doc["rule"] = rule
        if (severity := _int(alert.get("severity"))) is not None:
            event["severity"] = severity
        extra = {k: v for k, v in alert.items() if k not in _ALERT_KEYS and present(v)}
        if extra:
            unmapped["alert"] = extra

    @staticmethod
    def _http(http: dict[str, Any], doc: dict[str, Any], unmapped: dict[str, Any]) -> None:
        if present(host := http.get("hostname")):
            doc.setdefault("destination", {})["domain"] = host
        url = http.get("url")
        if isinstance(url, str) and url:
            doc["url"] = _url_parts(url)
        request: dict[str, Any] = {}
        response: dict[str, Any] = {}
        if present(value := http.get("http_method")):
            request["method"] = value
        if present(value := http.get("http_refer")):
            request["referrer"] = value
        if (status := _int(http.get("status"))) is not None:
            response["status_code"] = status
        if (length := _int(http.get("length"))) is not None:
            response["body"] = {"bytes": length}
        if present(value := http.get("http_content_type")):
            response["mime_type"] = value
        out: dict[str, Any] = {}
        protocol = http.get("protocol")
        if isinstance(protocol, str) and protocol.startswith("HTTP/") and len(protocol) > 5:
            out["version"] = protocol[5:]
        if request:
            out["request"] = request
        if response:
            out["response"] = response
        if out:
            doc["http"] = out
        if present(agent := http.get("http_user_agent")):
            doc["user_agent"] = {"original": agent}
        extra = {k: v for k, v in http.items() if k not in _HTTP_KEYS and present(v)}
        if extra:
            unmapped["http"] = extra

    @staticmethod
    def _tls(tls: dict[str, Any], doc: dict[str, Any], unmapped: dict[str, Any]) -> None:
        out: dict[str, Any] = doc.setdefault("tls", {})
        client: dict[str, Any] = {}
        server: dict[str, Any] = {}
        if present(sni := tls.get("sni")):
            client["server_name"] = sni
            doc.setdefault("destination", {})["domain"] = sni
        version = tls.get("version")
        if isinstance(version, str) and version and version != "UNDETERMINED":
            protocol, _, number = version.partition(" ")
            if number:
                out["version_protocol"] = protocol.lower()
                out["version"] = number
            elif (parsed := tls_version(version)) is not None:
                out["version_protocol"], out["version"] = parsed
        if present(value := tls.get("subject")):
            server["subject"] = value
        if present(value := tls.get("issuerdn")):
            server["issuer"] = value
        if isinstance(value := tls.get("fingerprint"), str) and value:
            server["hash"] = {"sha1": value.replace(":", "").upper()}
        x509: dict[str, Any] = {}
        if isinstance(value := tls.get("serial"), str) and value:
            x509["serial_number"] = value.replace(":", "")
        if (stamp := _date(tls.get("notbefore"))) is not None:
            x509["not_before"] = stamp
        if (stamp := _date(tls.get("notafter"))) is not None:
            x509["not_after"] = stamp
        if x509:
            server["x509"] = x509
        ja3 = tls.get("ja3")
        if isinstance(ja3, dict) and present(value := ja3.get("hash")):
            client["ja3"] = value
        ja3s = tls.get("ja3s")
        if isinstance(ja3s, dict) and present(value := ja3s.get("hash")):
            server["ja3s"] = value
        if client:
            out["client"] = client
        if server:
            out["server"] = server
        if not out:
            del doc["tls"]
        extra = {k: v for k, v in tls.items() if k not in _TLS_KEYS and present(v)}
        if extra:
            unmapped["tls"] = extra

    @staticmethod
    def _dns(dns: dict[str, Any], doc: dict[str, Any], unmapped: dict[str, Any]) -> None:
        """Suricata DNS alerts carry the query (EVE v1: a `query` list; v2: top-level `rrname`, `rrtype`)."""
        query = dns.get("query")
        first = query[0] if isinstance(query, list) and query and isinstance(query[0], dict) else dns
        out: dict[str, Any] = {}
        question: dict[str, Any] = {}
        if present(value := first.get("rrname")):
            question["name"] = value
            doc.setdefault("related", {}).setdefault("hosts", []).append(value)
        if present(value := first.get("rrtype")):
            question["type"] = value
        if question:
            out["question"] = question
        if present(value := first.get("type")):
            out["type"] = value
        if (value := first.get("id")) is not None and value != "":
            out["id"] = str(value)
        if present(value := dns.get("rcode") or first.get("rcode")):
            out["response_code"] = value
        if out:
            doc["dns"] = out
        # Anything beyond one query's name, type and id (tx_id, opcode, answers, more queries) is kept whole.
        mapped = {"rrname", "rrtype", "type", "id", "rcode"}
        several = isinstance(query, list) and (len(query) > 1 or len(dns) > 1)
        if any(k not in mapped for k in first) or several:
            unmapped["dns"] = dns


def _endpoint(address: Any, port: int | None, related_ip: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(address, str) and address and address != ABSENT:
        out["address"] = address
        if is_ip(address):
            out["ip"] = address
            if address not in related_ip:
                related_ip.append(address)
    if port is not None:
        out["port"] = port
    return out


PARSER = NetworkFirewallParser
