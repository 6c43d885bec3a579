"""Golden tests for AWS Network Firewall flow/alert/TLS logs, on real samples from the shared corpus."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.corpus import CORPUS, read_json_records, read_lines, read_text
from worker.decoding import JsonRecordsFramer
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers.network_firewall import NetworkFirewallParser

ELASTIC = "network_firewall/elastic-integrations_test-firewall.log"
OPENSEARCH = "network_firewall/opensearch-catalog_amazon_networkfirewall-sample.json"

# The AWS Network Firewall developer guide's TLS-log examples ("Logging for TLS inspection", "Troubleshooting
# TLS inspection"), verbatim: TLS-engine records have no event_type and write their ports as strings.
TLS_ERROR: dict[str, Any] = {
    "firewall_name": "firewall-tls-test", "availability_zone": "us-east-1d", "event_timestamp": 1719943304,
    "event": {"timestamp": "2024-07-02T18:01:44.412778Z", "src_ip": "10.0.2.53", "src_port": "59844",
              "dest_ip": "10.0.1.27", "dest_port": "443", "sni": "-",
              "tls_error": {"error_message": "Server name is not found in client hello."}},
}
REVOKED: dict[str, Any] = {
    "firewall_name": "egress-fw", "availability_zone": "us-east-1d", "event_timestamp": 1708361189,
    "event": {"src_ip": "10.0.2.53", "src_port": "55930",
              "revocation_check": {"leaf_cert_fpr": "1234567890EXAMPLE0987654321", "status": "REVOKED",
                                   "action": "DROP"},
              "dest_ip": "54.92.160.72", "dest_port": "443", "timestamp": "2024-02-19T16:46:29.441824Z",
              "sni": "revoked-rsa-dv.ssl.com"},
}


def parse(record: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    doc = NetworkFirewallParser(ParseContext(**ctx)).parse(record)
    assert doc is not None
    return doc


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def test_registry() -> None:
    cls = get_parser("network_firewall")
    assert cls is NetworkFirewallParser
    assert cls.framing == "json_records"
    assert cls.fields["aws.firewall.flow.start"] == "date"
    assert cls.fields["destination.ip"] == "ip"
    assert parse(orjson.loads(cls.example))["rule"]["id"] == "1000003"


def test_blocked_http_alert() -> None:
    doc = parse(read_json_records(ELASTIC)[0], account_id="111122223333")
    assert doc["@timestamp"] == "2021-11-08T14:22:12.637Z"
    assert doc["event"] == {"kind": "alert", "category": ["network"], "type": ["connection", "denied"],
                            "action": "blocked", "severity": 3}
    assert doc["cloud"] == {"provider": "aws", "availability_zone": "us-east-2a", "region": "us-east-2",
                            "account": {"id": "111122223333"}}
    assert doc["observer"] == {"name": "AWSNetworkFirewall", "type": "firewall", "vendor": "AWS",
                               "product": "Network Firewall"}
    assert doc["source"] == {"address": "81.2.69.143", "ip": "81.2.69.143", "port": 51254}
    assert doc["destination"] == {"address": "216.160.83.57", "ip": "216.160.83.57", "port": 80,
                                  "domain": "216.160.83.57"}
    assert doc["related"] == {"ip": ["81.2.69.143", "216.160.83.57"]}  # the domain is an IP: no related.hosts
    assert doc["network"] == {"type": "ipv4", "transport": "tcp", "iana_number": "6", "protocol": "http",
                              "community_id": "1:+Arv0tAf8Q00mJ6C2ho2P6pp0Io="}
    assert doc["rule"] == {"id": "1000003", "name": "Deny all other TCP traffic", "version": "1"}
    assert doc["url"] == {"original": "/", "path": "/"}
    assert doc["http"] == {"version": "1.1", "request": {"method": "GET"}, "response": {"body": {"bytes": 0}}}
    assert doc["user_agent"]["original"].startswith("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)")
    assert doc["aws"]["firewall"] == {"event_type": "alert", "flow": {"id": "706471429191862"}}
    assert "message" not in doc  # Elastic copies the empty alert category there


def test_netflow_record() -> None:
    doc = parse(read_json_records(ELASTIC)[1])
    assert doc["@timestamp"] == "2021-11-08T18:20:43.324Z"
    assert doc["event"] == {"kind": "event", "category": ["network"], "type": ["connection"]}
    assert doc["aws"]["firewall"] == {
        "event_type": "netflow",
        "flow": {"pkts": 1, "bytes": 40, "start": "2021-11-08T18:18:11.990Z", "end": "2021-11-08T18:18:11.990Z",
                 "age": 0, "min_ttl": 221, "max_ttl": 221, "id": "625409144331688"},
        "tcp_flags": "02",
        "tcp_flags_array": ["syn"],
    }
    assert doc["network"]["protocol"] == "unknown"  # no app_proto
    assert doc["network"]["community_id"] == "1:8w7Dxxu/XbT7j2QHfuLAWrp31Pc="
    assert "account" not in doc["cloud"]


def test_tls_alert_with_repeated_keys() -> None:
    # line 3 writes subject and issuerdn twice; the JSON decoder keeps the last value and the record is a document
    doc = parse(read_json_records(ELASTIC)[2])
    assert doc["@timestamp"] == "2023-01-20T14:35:18.307Z"
    assert doc["event"]["type"] == ["connection", "allowed"]
    assert doc["cloud"]["region"] == "eu-central-1"
    assert doc["tls"] == {
        "version_protocol": "tls",
        "version": "1.2",
        "client": {"server_name": "sqs.eu-central-1.amazonaws.com"},
        "server": {
            "subject": "CN=sqs.eu-central-1.amazonaws.com",
            "issuer": "C=US, O=Amazon, OU=Server CA 1B, CN=Amazon",
            "hash": {"sha1": "343632FB05658355A08E247B4152BF98883BBF9B"},
            "x509": {"serial_number": "08C97668CB30311CB224A4B322F01629",
                     "not_before": "2022-11-03T00:00:00.000Z", "not_after": "2023-10-16T23:59:59.000Z"},
        },
    }
    assert doc["destination"]["domain"] == "sqs.eu-central-1.amazonaws.com"
    assert doc["related"]["hosts"] == ["sqs.eu-central-1.amazonaws.com"]
    assert doc["network"]["protocol"] == "tls"
    assert "unmapped" not in doc["aws"]["firewall"]  # empty ja3/ja3s objects


def test_opensearch_sample_records() -> None:
    records = read_json_records(OPENSEARCH)
    assert len(records) == 13
    docs = [parse(r) for r in records]
    flow = docs[0]
    assert flow["aws"]["firewall"]["tcp_flags"] == "13"
    assert flow["aws"]["firewall"]["tcp_flags_array"] == ["fin", "syn", "ack"]  # hex 0x13, as the booleans say
    assert flow["aws"]["firewall"]["flow"]["bytes"] == 1208
    assert flow["aws"]["firewall"]["flow"]["end"] == "2025-02-24T14:40:47.636Z"
    push = docs[7]
    assert push["aws"]["firewall"]["tcp_flags_array"] == ["fin", "syn", "psh", "ack"]  # "1b"
    tls_alert = docs[1]
    assert tls_alert["aws"]["firewall"]["verdict"] == {"action": "drop"}
    assert tls_alert["aws"]["firewall"]["direction"] == "to_server"
    assert tls_alert["aws"]["firewall"]["pkt_src"] == "geneve encapsulation"
    assert tls_alert["tls"] == {"client": {"server_name": "checkip.amazonaws.com"}}  # version UNDETERMINED
    dns_alert = docs[5]
    assert dns_alert["dns"] == {"question": {"name": "checkip.amazonaws.com", "type": "A"}, "type": "query",
                                "id": "49938"}
    assert dns_alert["network"]["transport"] == "udp"
    assert dns_alert["related"]["hosts"] == ["checkip.amazonaws.com"]
    assert dns_alert["aws"]["firewall"]["unmapped"]["dns"]["query"][0]["tx_id"] == 0
    icmp_alert, icmp_flow = docs[8], docs[9]
    assert icmp_alert["aws"]["firewall"]["icmp_type"] == 8
    assert icmp_alert["aws"]["firewall"]["icmp_code"] == 0
    assert icmp_alert["network"]["iana_number"] == "1"
    assert "community_id" not in icmp_alert["network"]
    assert "port" not in icmp_flow["source"]  # ICMP netflow has no ports
    assert docs[4]["http"]["request"] == {"method": "GET"}
    assert docs[4]["user_agent"] == {"original": "curl/8.5.0"}
    assert docs[4]["destination"]["domain"] == "checkip.amazonaws.com"


def test_tls_engine_records() -> None:
    error = parse(TLS_ERROR)
    assert error["@timestamp"] == "2024-07-02T18:01:44.412Z"
    assert error["aws"]["firewall"] == {"event_type": "tls"}
    assert error["source"] == {"address": "10.0.2.53", "ip": "10.0.2.53", "port": 59844}
    assert error["destination"]["port"] == 443
    assert error["error"] == {"message": "Server name is not found in client hello."}
    assert error["event"]["outcome"] == "failure"
    assert "tls" not in error  # sni "-"
    assert error["network"] == {"type": "ipv4", "protocol": "tls"}
    revoked = parse(REVOKED)
    assert revoked["aws"]["firewall"]["revocation_check"] == {
        "leaf_cert_fpr": "1234567890EXAMPLE0987654321", "status": "REVOKED", "action": "DROP"
    }
    assert revoked["event"]["type"] == ["connection", "denied"]
    assert revoked["tls"] == {"client": {"server_name": "revoked-rsa-dv.ssl.com"}}
    assert revoked["destination"]["domain"] == "revoked-rsa-dv.ssl.com"


def test_event_timestamp_fallback_and_local_zone() -> None:
    record = copy.deepcopy(TLS_ERROR)
    del record["event"]["timestamp"]
    record["availability_zone"] = "us-west-2-lax-1a"
    doc = parse(record, region="eu-west-1")
    assert doc["@timestamp"] == "2024-07-02T18:01:44.000Z"
    assert doc["cloud"]["region"] == "us-west-2"
    record["availability_zone"] = "weird"
    assert parse(record, region="eu-west-1")["cloud"] == {"provider": "aws", "availability_zone": "weird",
                                                          "region": "eu-west-1"}


def test_drift_is_kept() -> None:
    record = copy.deepcopy(read_json_records(ELASTIC)[0])
    record["event"]["smb"] = {"command": "SMB2_COMMAND_NEGOTIATE"}
    record["event"]["http"]["xff"] = "1.2.3.4"
    record["event"]["alert"]["gid"] = 1
    record["event"]["tls_inspected"] = True
    record["log_version"] = "2"
    doc = parse(record)
    assert doc["aws"]["firewall"]["unmapped"] == {
        "alert": {"gid": 1}, "http": {"xff": "1.2.3.4"}, "smb": {"command": "SMB2_COMMAND_NEGOTIATE"},
        "log_version": "2",
    }
    assert doc["aws"]["firewall"]["tls_inspected"] is True


def test_absolute_url_and_ipv6() -> None:
    record = copy.deepcopy(read_json_records(ELASTIC)[0])
    record["event"]["http"]["url"] = "http://example.com:8080/a/b.php?x=1#frag"
    record["event"]["http"]["status"] = 403
    record["event"]["src_ip"] = "2001:db8::1"
    record["event"]["dest_ip"] = "2001:db8::2"
    doc = parse(record)
    assert doc["url"] == {"original": "http://example.com:8080/a/b.php?x=1#frag", "scheme": "http",
                          "domain": "example.com", "port": 8080, "fragment": "frag", "path": "/a/b.php",
                          "extension": "php", "query": "x=1"}
    assert doc["http"]["response"]["status_code"] == 403
    assert doc["network"]["type"] == "ipv6"
    assert doc["network"]["community_id"].startswith("1:")


def test_malformed_records() -> None:
    parser = NetworkFirewallParser(ParseContext())
    good = read_json_records(ELASTIC)[0]
    with pytest.raises(ParseError, match="JSON str, not an object"):
        parser.parse("text")
    with pytest.raises(ParseError, match="has no event object"):
        parser.parse(dict(good, event="x"))
    with pytest.raises(ParseError, match="not a Network Firewall record"):
        parser.parse({"hello": "world"})
    broken = copy.deepcopy(good)
    broken["event"]["timestamp"] = "yesterday"
    broken["event_timestamp"] = "soon"
    with pytest.raises(ParseError, match="no readable time"):
        parser.parse(broken)
    bad_fields = copy.deepcopy(good)
    bad_fields["event"].update(src_ip="not-an-ip", src_port="x", tcp={"tcp_flags": "zz"})
    doc = parser.parse(bad_fields)
    assert doc is not None
    assert doc["source"] == {"address": "not-an-ip"}
    assert doc["aws"]["firewall"]["tcp_flags"] == "zz" and "tcp_flags_array" not in doc["aws"]["firewall"]
    assert "community_id" not in doc["network"]


def test_sibling_records_are_rerouted() -> None:
    waf = read_json_records("waf/elastic-integrations_test-waf.log")[0]
    with pytest.raises(Reroute) as exc:
        parse(waf)
    assert exc.value.log_type == "waf"
    resolver = read_json_records("route53_resolver/awsdocs_resolver-query-logs-example-json.log")[0]
    with pytest.raises(Reroute) as exc:
        parse(resolver)
    assert exc.value.log_type == "route53_resolver"


def test_event_original_only_with_keep_original() -> None:
    record = read_json_records(ELASTIC)[0]
    assert "original" not in parse(record)["event"]
    original = parse(record, keep_original=True)["event"]["original"]
    assert original == read_lines(ELASTIC)[0]


def test_sniff() -> None:
    assert NetworkFirewallParser.sniff(read_text(ELASTIC)[:65536])
    assert NetworkFirewallParser.sniff(read_text(OPENSEARCH)[:65536])
    others = (
        "waf/elastic-integrations_test-waf.log",
        "route53_resolver/elastic-integrations_test-route53.log",
        "cloudtrail/elastic-integrations_test-console-login-json.log",
        "elb/elastic-integrations_test-alb.log",
        "vpcflow/elastic-integrations_test-v5-all-fields.log",
    )
    for name in others:
        assert not NetworkFirewallParser.sniff(read_text(name)[:65536]), name


def _frame(path: Path) -> tuple[list[Any], list[Any]]:
    framer = JsonRecordsFramer()
    framer.feed(path.read_bytes())
    return framer.finish()


def test_no_silent_drops_and_no_dash() -> None:
    counts = {}
    for path in sorted((CORPUS / "network_firewall").iterdir()):
        if path.name.endswith("-expected.json"):
            continue
        records, errors = _frame(path)
        assert not errors, errors
        parser = NetworkFirewallParser(ParseContext(keep_original=True))
        docs = [parser.parse(record) for _, record in records]
        for doc in docs:
            assert isinstance(doc, dict)
            assert "-" not in list(leaves(doc)), doc
        counts[path.name] = len(docs)
    assert counts == {"elastic-integrations_test-firewall.log": 3,
                      "opensearch-catalog_amazon_networkfirewall-sample.json": 13}
    assert "-" not in list(leaves(parse(TLS_ERROR)))
