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
])
def test_auto_routes_by_key(key: str, log_type: str, account: str, region: str) -> None:
    route = route_s3_key(key)
    assert (route.log_type, route.account_id, route.region, route.skip) == (log_type, account, region, None)


def test_digest_is_skipped_even_with_fixed_type() -> None:
    key = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/22/x_CloudTrail-Digest_us-east-1_x.json.gz"
    assert route_s3_key(key).skip == "cloudtrail_digest"
    assert route_s3_key(key, "cloudtrail").skip == "cloudtrail_digest"


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
    ("hello world", None),
])
def test_sniff(head: str, expected: str | None) -> None:
    assert sniff_log_type(head) == expected
