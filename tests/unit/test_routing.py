import pytest

from worker.routing import route_s3_key, sniff_log_type


@pytest.mark.parametrize(("key", "log_type", "account", "region"), [
    ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/22/123456789012_vpcflowlogs_us-east-1_fl-1_x.log.gz",
     "vpc_flow", "123456789012", "us-east-1"),
    ("prefix/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2026/11/22/x_app.lb.1_x.log.gz",
     "alb", "123456789012", "eu-west-1"),
    ("AWSLogs/o-abc123/123456789012/CloudTrail/us-west-2/2026/11/22/x_CloudTrail_us-west-2_x.json.gz",
     "cloudtrail", "123456789012", "us-west-2"),
    ("AWSLogs/123456789012/CloudTrail-Insight/us-west-2/2026/11/22/x.json.gz", "cloudtrail", "123456789012",
     "us-west-2"),
    ("AWSLogs/123456789012/elasticloadbalancing/us-east-2/2026/11/22/"
     "123456789012_elasticloadbalancing_us-east-2_net.my-nlb.1234567890abcdef_20261122T0000Z_1a2b3c4d.log.gz",
     "nlb", "123456789012", "us-east-2"),
    ("AWSLogs/123456789012/elasticloadbalancing/us-east-2/2026/11/22/"
     "123456789012_elasticloadbalancing_us-east-2_my-clb_20261122T0000Z_172.160.001.192_20sg8hgm.log",
     "elb", "123456789012", "us-east-2"),
    ("AWSLogs/123456789012/elasticloadbalancing/us-east-2/2026/11/22/conn_log.123456789012_elasticloadbalancing_"
     "us-east-2_app.my-alb.1234567890abcdef_20261122T0000Z_10.0.0.1_x.log.gz", "alb", "123456789012", "us-east-2"),
    ("AWSLogs/123456789012/Config/eu-west-1/2026/11/22/ConfigSnapshot/123456789012_Config_eu-west-1_"
     "ConfigSnapshot_20261122T000000Z_x.json.gz", "aws_config", "123456789012", "eu-west-1"),
    ("AWSLogs/123456789012/WAFLogs/us-east-1/my-acl/2026/11/22/10/05/123456789012_waflogs_us-east-1_my-acl_x.log.gz",
     "waf", "123456789012", "us-east-1"),
    ("AWSLogs/123456789012/network-firewall/alert/2026/11/22/10/123456789012_network-firewall_alert_x.log.gz",
     "network_firewall", "123456789012", ""),
    ("AWSLogs/123456789012/vpcdnsquerylogs/vpc-0a1b2c3d/2026/11/22/vpc-0a1b2c3d_vpcdnsquerylogs_x.log.gz",
     "route53_resolver", "123456789012", ""),
    ("cf-logs/E2K2LNL5N3WR51.2026-11-22-10.a1b2c3d4.gz", "cloudfront", "", ""),
    ("s3-access/2026-11-22-10-05-33-0123456789ABCDEF", "s3_access", "", ""),
])
def test_auto_routes_by_key(key: str, log_type: str, account: str, region: str) -> None:
    route = route_s3_key(key)
    assert (route.log_type, route.account_id, route.region, route.skip) == (log_type, account, region, None)


def test_digest_is_skipped_even_with_fixed_type() -> None:
    key = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/22/x_CloudTrail-Digest_us-east-1_x.json.gz"
    assert route_s3_key(key).skip == "cloudtrail_digest"
    assert route_s3_key(key, "cloudtrail").skip == "cloudtrail_digest"


def test_config_writability_probe_is_skipped() -> None:
    key = "AWSLogs/123456789012/Config/ConfigWritabilityCheckFile"
    assert route_s3_key(key).skip == "config_writability_check"


def test_unknown_key_has_no_type_and_override_wins() -> None:
    assert route_s3_key("random/file.log").log_type is None
    assert route_s3_key("random/file.log", "alb").log_type == "alb"


@pytest.mark.parametrize(("head", "expected"), [
    ('{"Records":[{"eventVersion":"1.08"}]}', "cloudtrail"),
    ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
     "log-status\n", "vpc_flow"),
    ("2 123456789012 eni-1235b8ca 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
     "vpc_flow"),
    ('https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - 0.0 "x"',
     "alb"),
    ('{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","logEvents":[]}', "cloudwatch_logs"),
    ('{"fileVersion":"1.0","configSnapshotId":"x","configurationItems":[{"configurationItemVersion":"1.3"}]}',
     "aws_config"),
    ("#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method\n", "cloudfront"),
    ("hello world", None),
    ("", None),
])
def test_sniff(head: str, expected: str | None) -> None:
    assert sniff_log_type(head) == expected
