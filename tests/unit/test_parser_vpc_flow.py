"""Golden tests for VPC flow log records, on real samples from the shared corpus."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from tests.corpus import CORPUS, load_expected, read_lines
from worker.decoding import LineFramer
from worker.parsers import ParseContext, ParseError, get_parser
from worker.parsers._fields import community_id, epoch_to_iso, flatten
from worker.parsers.vpc_flow import VpcFlowParser, normalize_format

EXTRA = "vpcflow/elastic-integrations_test-extra-samples.log"


def parser(**options: Any) -> VpcFlowParser:
    return VpcFlowParser(ParseContext(options=options))


def parse_file(relative: str, **options: Any) -> list[dict[str, Any] | None]:
    """One parser for the whole file, as the pipeline does for one S3 object."""
    p = parser(**options)
    return [p.parse(line) for line in read_lines(relative)]


def assert_no_dash(doc: dict[str, Any]) -> None:
    for key, value in flatten(doc).items():
        assert value != "-", key
        if isinstance(value, list):
            assert "-" not in value, key


def test_registry() -> None:
    cls = get_parser("vpc_flow")
    assert cls is VpcFlowParser
    assert cls.framing == "lines"


def test_default_format_ipv6_accept() -> None:
    doc = parser().parse(read_lines(EXTRA)[0])
    assert doc is not None
    assert doc["source"] == {
        "address": "2001:db8:1234:a100:8d6e:3477:df66:f105",
        "ip": "2001:db8:1234:a100:8d6e:3477:df66:f105",
        "port": 34892,
        "packets": 54,
        "bytes": 8855,
    }
    assert doc["destination"] == {
        "address": "2001:db8:1234:a102:3304:8879:34cf:4071",
        "ip": "2001:db8:1234:a102:3304:8879:34cf:4071",
        "port": 22,
    }
    assert doc["network"] == {
        "type": "ipv6",
        "iana_number": "6",
        "transport": "tcp",
        "packets": 54,
        "bytes": 8855,
    }
    # Elastic's @timestamp is the end of the capture window.
    assert doc["@timestamp"] == "2016-10-31T11:37:00.000Z"
    assert doc["event"]["start"] == "2016-10-31T11:35:08.000Z"
    assert doc["event"]["end"] == "2016-10-31T11:37:00.000Z"
    assert doc["event"]["outcome"] == "success"
    assert doc["event"]["kind"] == "event"
    assert doc["event"]["category"] == ["network"]
    assert doc["event"]["type"] == ["connection"]
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "123456789010"}}
    assert doc["aws"]["vpcflow"] == {
        "version": "2",
        "account_id": "123456789010",
        "interface_id": "eni-1235b8ca123456789",
        "action": "ACCEPT",
        "log_status": "OK",
    }
    assert doc["related"] == {"ip": [doc["source"]["ip"], doc["destination"]["ip"]]}
    assert "original" not in doc["event"]


def test_nodata_and_skipdata_keep_status_and_drop_dashes() -> None:
    lines = read_lines(EXTRA)
    nodata = parser().parse(lines[1])
    skipdata = parser().parse(lines[2])
    assert nodata is not None and skipdata is not None
    for doc in (nodata, skipdata):
        assert_no_dash(doc)
        for absent in ("source", "destination", "network", "related"):
            assert absent not in doc
        assert "outcome" not in doc["event"]
        assert "action" not in doc["aws"]["vpcflow"]
        assert doc["@timestamp"] == "2015-05-10T18:02:14.000Z"
    assert nodata["aws"]["vpcflow"]["log_status"] == "NODATA"
    assert skipdata["aws"]["vpcflow"]["log_status"] == "SKIPDATA"
    assert skipdata["aws"]["vpcflow"]["interface_id"] == "eni-11111111aaaaaaaaa"


def test_reject_and_icmp() -> None:
    docs = [parser().parse(line) for line in read_lines(EXTRA)]
    reject = docs[4]
    assert reject is not None
    assert reject["event"]["outcome"] == "failure"
    assert reject["destination"]["port"] == 3389
    icmp = docs[5]
    assert icmp is not None
    assert icmp["network"]["transport"] == "icmp"
    assert icmp["network"]["iana_number"] == "1"
    assert icmp["source"]["port"] == 0
    assert icmp["network"]["type"] == "ipv4"


def test_header_lines_declare_the_format_and_may_repeat() -> None:
    docs = parse_file("vpcflow/elastic-integrations_test-tcp-flag-sequence.log")
    assert [doc is None for doc in docs] == [True, False, True, False, True, False]
    first, skip, nodata = docs[1], docs[3], docs[5]
    assert first is not None and skip is not None and nodata is not None
    assert first["aws"]["vpcflow"]["vpc_id"] == "vpc-abcdefab012345678"
    assert first["aws"]["vpcflow"]["tcp_flags"] == "2"
    assert first["aws"]["vpcflow"]["tcp_flags_array"] == ["syn"]
    assert first["source"]["bytes"] == 568
    assert first["source"]["packets"] == 8
    assert first["cloud"]["instance"] == {"id": "i-01234567890123456"}
    assert skip["aws"]["vpcflow"]["log_status"] == "SKIPDATA"
    assert nodata["aws"]["vpcflow"]["log_status"] == "NODATA"
    for doc in (skip, nodata):
        assert_no_dash(doc)
        assert "tcp_flags" not in doc["aws"]["vpcflow"]
        assert doc["event"]["start"] == "2019-08-26T19:47:55.000Z"


def test_header_with_double_space_line_and_flag_combinations() -> None:
    docs = parse_file("vpcflow/awsdocs_flow-logs-records-examples_tcp-flag-sequence.log")
    assert docs[0] is None
    last = docs[-1]
    assert last is not None
    assert last["destination"]["port"] == 43638
    assert last["aws"]["vpcflow"]["tcp_flags_array"] == ["fin", "syn", "ack"]
    second = docs[2]
    assert second is not None
    assert second["aws"]["vpcflow"]["tcp_flags_array"] == ["syn", "ack"]


def test_header_custom_order_without_times() -> None:
    docs = parse_file("vpcflow/awsdocs_flow-logs-records-examples_nat-gateway.log")
    assert docs[0] is None
    doc = docs[1]
    assert doc is not None
    assert doc["source"]["ip"] == "10.0.1.5"
    assert doc["destination"]["ip"] == "10.0.0.220"
    assert doc["aws"]["vpcflow"] == {
        "interface_id": "eni-1235b8ca123456789",
        "pkt_srcaddr": "10.0.1.5",
        "pkt_dstaddr": "203.0.113.5",
    }
    assert "@timestamp" not in doc  # the format has neither start nor end
    assert "cloud" in doc and "instance" not in doc["cloud"]


def test_header_with_protocol_before_tcp_flags_and_no_times() -> None:
    docs = parse_file("vpcflow/awsdocs_flow-logs-records-examples_transit-gateway.log")
    doc = docs[3]
    assert doc is not None
    assert doc["aws"]["vpcflow"]["subnet_id"] == "subnet-11111111aaaaaaaaa"
    assert "instance_id" not in doc["aws"]["vpcflow"]
    assert doc["source"]["port"] == 39812
    assert doc["aws"]["vpcflow"]["pkt_srcaddr"] == "10.20.33.164"
    assert doc["aws"]["vpcflow"]["tcp_flags_array"] == ["fin", "syn"]


def test_header_switches_format_mid_stream() -> None:
    p = parser()
    assert p.parse("srcaddr dstaddr bytes") is None
    first = p.parse("10.0.0.1 10.0.0.2 100")
    assert first is not None and first["source"]["bytes"] == 100
    assert p.parse("bytes dstaddr srcaddr end") is None
    second = p.parse("200 10.0.0.2 10.0.0.1 1566848933")
    assert second is not None
    assert second["source"]["ip"] == "10.0.0.1"
    assert second["destination"]["ip"] == "10.0.0.2"
    assert second["network"]["bytes"] == 200
    assert second["@timestamp"] == "2019-08-26T19:48:53.000Z"


@pytest.mark.parametrize(
    "fmt",
    [
        # VRL's documented v5 example: fields in an order of the user's choosing, underscores.
        "version srcaddr dstaddr srcport dstport protocol start end type packets bytes account_id vpc_id "
        "subnet_id instance_id interface_id region az_id sublocation_type sublocation_id action tcp_flags "
        "pkt_srcaddr pkt_dstaddr pkt_src_aws_service pkt_dst_aws_service traffic_path flow_direction log_status",
        # The same, as the AWS console writes it.
        "${version} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${start} ${end} ${type} "
        "${packets} ${bytes} ${account-id} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${region} "
        "${az-id} ${sublocation-type} ${sublocation-id} ${action} ${tcp-flags} ${pkt-srcaddr} ${pkt-dstaddr} "
        "${pkt-src-aws-service} ${pkt-dst-aws-service} ${traffic-path} ${flow-direction} ${log-status}",
    ],
)
def test_format_option_in_any_order(fmt: str) -> None:
    line = (
        "5 52.95.128.179 10.0.0.71 80 34210 6 1616729292 1616729349 IPv4 14 15044 123456789012 "
        "vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 "
        "ap-southeast-2 apse2-az3 - - ACCEPT 19 52.95.128.179 10.0.0.71 S3 - - ingress OK"
    )
    doc = parser(format=fmt).parse(line)
    assert doc is not None
    assert doc["source"] == {"address": "52.95.128.179", "ip": "52.95.128.179", "port": 80,
                             "packets": 14, "bytes": 15044}
    assert doc["destination"]["port"] == 34210
    assert doc["cloud"]["region"] == "ap-southeast-2"
    assert doc["cloud"]["availability_zone"] == "apse2-az3"
    assert doc["cloud"]["instance"]["id"] == "i-0c50d5961bcb2d47b"
    assert doc["network"]["direction"] == "ingress"
    vpc = doc["aws"]["vpcflow"]
    assert vpc["pkt_src_service"] == "S3"
    assert "pkt_dst_service" not in vpc and "traffic_path" not in vpc and "sublocation" not in vpc
    assert vpc["tcp_flags_array"] == ["fin", "syn", "ack"]
    assert doc["@timestamp"] == "2021-03-26T03:29:09.000Z"
    assert_no_dash(doc)


def test_header_starting_with_a_column_newer_than_the_parser() -> None:
    p = parser()
    assert p.parse("quantum-entanglement-id srcaddr dstaddr end") is None
    doc = p.parse("qe-42 10.0.0.1 10.0.0.2 1566848933")
    assert doc is not None
    assert doc["aws"]["vpcflow"]["quantum_entanglement_id"] == "qe-42"
    assert doc["source"]["ip"] == "10.0.0.1"
    # a lower-case first value is still data when the line carries no column name
    nat = parser(format="interface-id srcaddr")
    line = nat.parse("eni-1235b8ca123456789 10.0.0.1")
    assert line is not None and line["aws"]["vpcflow"]["interface_id"] == "eni-1235b8ca123456789"


def test_header_beats_format_option() -> None:
    p = parser(format="srcaddr dstaddr")
    assert p.parse("dstaddr srcaddr") is None
    doc = p.parse("10.0.0.2 10.0.0.1")
    assert doc is not None and doc["source"]["ip"] == "10.0.0.1"


def test_field_count_mismatch_is_a_parse_error() -> None:
    p = parser()
    assert p.parse("version srcaddr dstaddr") is None
    with pytest.raises(ParseError, match="has 4 fields, the declared format has 3"):
        p.parse("2 10.0.0.1 10.0.0.2 extra")
    with pytest.raises(ParseError, match="has 13 fields"):
        parser().parse(" ".join(read_lines(EXTRA)[0].split()[:13]))
    with pytest.raises(ParseError, match="declared format has 2"):
        parser(format="srcaddr dstaddr").parse("10.0.0.1")


def test_bad_values_are_parse_errors() -> None:
    base = read_lines(EXTRA)[0].split()
    bad_port = base.copy()
    bad_port[5] = "http"
    with pytest.raises(ParseError, match="srcport"):
        parser().parse(" ".join(bad_port))
    bad_end = base.copy()
    bad_end[11] = "yesterday"
    with pytest.raises(ParseError, match="start/end"):
        parser().parse(" ".join(bad_end))


def test_v5_all_fields_without_header() -> None:
    doc = parser().parse(read_lines("vpcflow/elastic-integrations_test-v5-all-fields.log")[0])
    assert doc is not None
    assert doc["event"]["start"] == "1975-03-14T03:34:26.000Z"  # the sample's start is a typo; Elastic agrees
    assert doc["@timestamp"] == "2021-12-20T11:38:17.000Z"
    assert doc["cloud"]["region"] == "us-east-1"
    assert doc["cloud"]["availability_zone"] == "use1-az5"
    assert doc["network"]["transport"] == "udp"
    assert doc["network"]["direction"] == "ingress"
    vpc = doc["aws"]["vpcflow"]
    assert vpc["pkt_src_service"] == "AMAZON"
    assert vpc["pkt_dst_service"] == "CLOUDFRONT"
    assert vpc["traffic_path"] == "1"
    assert vpc["tcp_flags_array"] == ["fin"]
    assert "sublocation" not in vpc
    assert doc["event"]["outcome"] == "failure"


def test_v8_ecs_fields_without_header() -> None:
    doc = parser().parse(read_lines("vpcflow/elastic-integrations_test-v8-samples.log")[0])
    assert doc is not None
    vpc = doc["aws"]["vpcflow"]
    assert vpc["ecs_cluster_name"] == "backend-cluster"
    assert vpc["ecs_service_name"] == "payments-service"
    assert vpc["ecs_task_definition_arn"] == "arn:aws:ecs:us-east-1:000000000000:task-definition/orders:12"
    assert vpc["ecs_task_id"] == "e504f037-35c"
    assert vpc["ecs_second_container_id"] == "dea79277-480"
    assert vpc["reject_reason"] == "BPA"
    assert vpc["log_status"] == "NODATA"
    assert "interface_id" not in vpc
    assert doc["source"]["ip"] == "2a02:cf40::"
    assert doc["network"]["type"] == "ipv6"
    assert_no_dash(doc)


def test_transit_gateway_default_format_without_header() -> None:
    docs = [parser().parse(line) for line in read_lines("vpcflow/elastic-integrations_test-tgw-samples.log")]
    assert len(docs) == 10
    first = docs[0]
    assert first is not None
    vpc = first["aws"]["vpcflow"]
    assert vpc["tgw_id"] == "tgw-0a12bc34de56f7890"
    assert vpc["tgw_attachment_id"] == "tgw-attach-0789ijkl"
    assert vpc["tgw_src_vpc_id"] == "vpc-0jkl5678"
    assert vpc["tgw_src_eni"] == "eni-0cc3dd4ee5f66aa7b"
    assert vpc["log_status"] == "SKIPDATA"
    assert "packets_lost_no_route" not in vpc
    assert first["destination"]["ip"] == "2a02:cf40::"
    assert first["destination"]["port"] == 22
    assert first["network"]["direction"] == "ingress"
    assert first["cloud"]["account"]["id"] == "748335378900"


def test_transit_gateway_header_with_lost_packet_counters() -> None:
    docs = parse_file("vpcflow/otel-contrib_valid_tgw_flow_log.log")
    doc = docs[1]
    assert doc is not None
    vpc = doc["aws"]["vpcflow"]
    assert vpc["packets_lost_no_route"] == 1
    assert vpc["packets_lost_blackhole"] == 2
    assert vpc["packets_lost_mtu_exceeded"] == 3
    assert vpc["packets_lost_ttl_expired"] == 4
    assert vpc["tgw_src_az_id"] == "use1-az1"
    assert doc["cloud"]["region"] == "us-east-1"


def test_ecs_header() -> None:
    doc = parse_file("vpcflow/otel-contrib_valid_vpc_flow_log_ecs.log")[1]
    assert doc is not None
    assert doc["aws"]["vpcflow"]["ecs_cluster_arn"] == "arn:aws:ecs:us-east-1:123456789012:cluster/my-cluster"
    assert doc["aws"]["vpcflow"]["ecs_container_id"] == "container-1"


def test_json_message_wrapper() -> None:
    line = read_lines("vpcflow/elastic-integrations_test-with-message-field.log")[0]
    doc = VpcFlowParser(ParseContext(keep_original=True)).parse(line)
    assert doc is not None
    assert doc["aws"]["vpcflow"]["log_status"] == "NODATA"
    assert doc["cloud"]["account"]["id"] == "428961148399"
    assert doc["@timestamp"] == "2022-12-14T14:55:28.000Z"
    assert doc["event"]["original"] == line
    with pytest.raises(ParseError, match="message"):
        parser().parse('{"msg": "2 1 eni-1"}')
    with pytest.raises(ParseError, match="not JSON"):
        parser().parse("{2 123")


def test_community_id_matches_elastic() -> None:
    expected = load_expected("vpcflow/elastic-integrations_test-v5-all-fields.log-expected.json")[0]
    doc = parser(community_id=True).parse(expected["event"]["original"])
    assert doc is not None
    assert doc["network"]["community_id"] == expected["network"]["community_id"]
    assert "community_id" not in (parser().parse(expected["event"]["original"]) or {})["network"]
    assert community_id("89.160.20.156", "10.0.0.62", 6, 43416, 5001) == "1:dF5WY79X1yVncj+yH8q27Q5Bnpk="
    # direction-independent, as the spec requires
    assert community_id("10.0.0.62", "89.160.20.156", 6, 5001, 43416) == "1:dF5WY79X1yVncj+yH8q27Q5Bnpk="
    assert community_id("10.0.0.1", "10.0.0.2", 1, 0, 0) is None


def test_context_fills_account_and_region_only_when_the_line_lacks_them() -> None:
    ctx = ParseContext(account_id="999999999999", region="eu-west-1")
    doc = VpcFlowParser(ctx).parse(read_lines(EXTRA)[0])
    assert doc is not None
    assert doc["cloud"]["account"]["id"] == "123456789010"
    assert doc["cloud"]["region"] == "eu-west-1"
    p = VpcFlowParser(ParseContext(account_id="999999999999", options={"format": "srcaddr dstaddr"}))
    other = p.parse("10.0.0.1 10.0.0.2")
    assert other is not None and other["cloud"]["account"]["id"] == "999999999999"


def test_blank_line_is_not_an_event() -> None:
    assert parser().parse("") is None
    assert parser().parse("   ") is None


def test_normalize_format_and_bad_option() -> None:
    assert normalize_format("${srcaddr} pkt_dstaddr ${Log-Status}") == ("srcaddr", "pkt-dstaddr", "log-status")
    with pytest.raises(ValueError, match="repeats"):
        parser(format="srcaddr srcaddr")


def test_epoch_to_iso() -> None:
    assert epoch_to_iso("1560246968") == "2019-06-11T09:56:08.000Z"
    assert epoch_to_iso("0") == "1970-01-01T00:00:00.000Z"
    with pytest.raises(ValueError):
        epoch_to_iso("soon")


def test_every_emitted_typed_field_is_declared() -> None:
    """Numbers, IPs and dates must be in `fields`, or the index would map them by guesswork."""
    files = [
        EXTRA,
        "vpcflow/elastic-integrations_test-tcp-flag-sequence.log",
        "vpcflow/elastic-integrations_test-v5-all-fields.log",
        "vpcflow/elastic-integrations_test-tgw-samples.log",
        "vpcflow/otel-contrib_valid_tgw_flow_log.log",
    ]
    declared = VpcFlowParser.fields
    for relative in files:
        for doc in parse_file(relative, community_id=True):
            if doc is None:
                continue
            for key, value in flatten(doc).items():
                if isinstance(value, int):
                    assert declared.get(key) == "long", key
                if key.endswith((".ip", "addr")) or key in ("@timestamp", "event.start", "event.end"):
                    assert key in declared, key


def _general(p: VpcFlowParser) -> VpcFlowParser:
    p._plain_default = False  # the column-by-column path only
    return p


@pytest.mark.parametrize("ctx", [ParseContext(), ParseContext(region="eu-west-1", account_id="111122223333")])
def test_default_format_fast_path_builds_the_general_paths_document(ctx: ParseContext) -> None:
    """The one-expression path for complete default-format lines gives exactly the general path's documents
    and errors: on every corpus line of that format and on edge values (IPv6, unknown protocols, other actions)."""
    lines = [line for path in sorted((CORPUS / "vpcflow").glob("*.log"))
             for line in read_lines(f"vpcflow/{path.name}") if len(line.split()) == 14 and "-" not in line.split()]
    base = "2 123456789010 eni-0123 2001:db8::1 10.0.0.2 443 50000 {proto} 3 180 1700000000 1700000060 {action} OK"
    lines += [base.format(proto=proto, action=action)
              for proto in ("6", "17", "1", "58", "250") for action in ("ACCEPT", "REJECT", "OTHER")]
    assert len(lines) >= 20
    fast, slow = VpcFlowParser(ctx), _general(VpcFlowParser(ctx))
    assert fast._plain_default
    for line in lines:
        assert fast.parse(line) == slow.parse(line), line
    for bad, match in (("tcp", "protocol"), ("x6", "protocol")):
        with pytest.raises(ParseError, match=match):
            fast.parse(base.format(proto=bad, action="ACCEPT"))
        with pytest.raises(ParseError, match=match):
            slow.parse(base.format(proto=bad, action="ACCEPT"))
    for column, value, match in ((5, "http", "srcport"), (9, "1e3", "bytes"), (11, "later", "start/end")):
        values = base.format(proto="6", action="ACCEPT").split()
        values[column] = value
        with pytest.raises(ParseError, match=match):
            fast.parse(" ".join(values))
        with pytest.raises(ParseError, match=match):
            slow.parse(" ".join(values))


@pytest.mark.parametrize("ctx", [ParseContext(), ParseContext(region="eu-west-1", account_id="111122223333"),
                                 ParseContext(region='odd"re%sgion\\')])
def test_serialized_path_writes_exactly_the_json_of_the_dict_path(ctx: ParseContext) -> None:
    """`parse_serialized` (the worker's path when nothing is added to documents) gives, for every line, either
    the dict `parse` gives or (its `@timestamp`, the very bytes orjson writes for it), and the same errors;
    lines whose text would need JSON escaping, and every other format, take the dict path."""
    streams = [read_lines(f"vpcflow/{path.name}") for path in sorted((CORPUS / "vpcflow").glob("*.log"))]
    base = "2 123456789010 eni-0123 {src} 10.0.0.2 443 50000 {proto} 3 180 1700000000 {end} {action} OK"
    edge = [base.format(src=src, proto=proto, action=action, end=end)
            for src in ("2001:db8::1", "192.0.2.7") for proto in ("6", "17", "1", "58", "250")
            for action in ("ACCEPT", "REJECT", "OTHER") for end in ("1700000060", "1700000061")]
    edge += [base.format(src="1.2.3.4", proto="6", action="ACCEPT", end="1700000060").replace(" 3 180 ", f" {n} ")
             for n in ("18446744073709551615 1", "9223372036854775807 1", "9223372036854775808 1", "-1 5", "007 08")]
    edge += [base.format(src=src, proto="6", action="ACCEPT", end="1700000060")
             for src in ('1.2.3.4"', "1.2.3.4\\", "1.2.3.\x01", "1.2.3.\x1b", "1.2.3.\x7f", "1.2.3.\x85", "ünïcode",
                         "1.2.3.4\u2028", "1.2.3.4\x1c5", "-")]
    edge += [base.format(src="1.2.3.4", proto="6", action="ACCEPT", end="1700000060").replace(" ", "\t"),
             "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
             "action log-status", '{"message": "' + base.format(src="1.2.3.4", proto="6", action="ACCEPT",
                                                                end="1700000060") + '"}', ""]
    serialized = 0
    for lines in [*streams, edge]:  # a parser per stream, as the pipeline has (a header sets the stream's format)
        fast, slow = VpcFlowParser(ctx), VpcFlowParser(ctx)
        for line in lines:
            framer = LineFramer(check_plain=True)  # what the pipeline asks before it lets the parser format JSON
            framer.feed(line.encode() + b"\n")
            parse = fast.parse_serialized if framer.plain else fast.parse
            try:
                want = slow.parse(line)
            except ParseError as exc:
                with pytest.raises(ParseError, match=re.escape(str(exc))):
                    parse(line)
                continue
            got = parse(line)
            if isinstance(got, tuple):
                serialized += 1
                assert want is not None
                assert got == (want["@timestamp"], orjson.dumps(want)), line
            else:
                assert got == want, line
    assert serialized >= len(edge) // 2  # the common lines did take the formatted path


def test_serialized_path_only_for_the_default_format_without_options() -> None:
    line = "2 123456789010 eni-0123 10.0.0.1 10.0.0.2 443 50000 6 3 180 1700000000 1700000060 ACCEPT OK"
    assert isinstance(parser().parse_serialized(line), tuple)
    for options in ({"community_id": True}, {"format": "version account-id interface-id srcaddr dstaddr srcport "
                                             "dstport protocol packets bytes start end log-status action"}):
        got = parser(**options).parse_serialized(line)
        assert isinstance(got, dict) and got == parser(**options).parse(line)
    kept = VpcFlowParser(ParseContext(keep_original=True)).parse_serialized(line)
    assert isinstance(kept, dict) and kept["event"]["original"] == line
