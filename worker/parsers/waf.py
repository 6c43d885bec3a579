"""AWS WAF (v2) logs -> ECS, with the field names and categorisation of Elastic's `aws.waf` pipeline.

One JSON object per request (S3 via Firehose `aws-waf-logs-*` delivery streams, `AWSLogs/.../WAFLogs/...` S3
objects, CloudWatch Logs groups `aws-waf-logs-*`). What goes where:

- `webaclId` (an ARN) -> `aws.waf.arn`, and split as Elastic does: `cloud.service.name`, `cloud.region`,
  `cloud.account.id`, `aws.waf.id` (`regional/webacl/<name>/<uuid>`); the web ACL's name, which Elastic leaves
  inside the id, is also `aws.waf.web_acl_name`. `terminatingRuleId` -> `rule.id`, `terminatingRuleType` ->
  `rule.ruleset` (Elastic's choice), `action` -> `event.action` kept upper-case (`ALLOW`, `BLOCK`, `COUNT`,
  `CAPTCHA`, `CHALLENGE`: Elastic does not lowercase it, and its `event.type` test compares the upper-case
  value), `timestamp` (epoch ms) -> `@timestamp`.
- `httpRequest.headers`, a list of `{name, value}`, becomes one object `aws.waf.request.headers` mapped as
  `flattened`: one mapping entry whatever headers clients invent. Keys are the header names lower-cased
  (HTTP names are case-insensitive, HTTP/2 and HTTP/3 send them lower-case, HTTP/1.1 clients in any case, so
  Elastic's verbatim keys split `Host` and `host` into two fields nobody can query together); a header sent
  more than once keeps all its values as a list (Elastic keeps the last). `user-agent` and `referer` are also
  lifted to `user_agent.original` and `http.request.referrer`.
- Rule match details (`terminatingRuleMatchDetails`, `ruleGroupList`, `nonTerminatingMatchingRules`,
  `rateBasedRuleList`, `requestHeadersInserted`) keep AWS's own structure under Elastic's snake_case names,
  without the nulls, empty values and `-` (as Elastic's clean-up script does), mapped `flattened`: their shape
  varies by rule type and grows with new WAF features. `labels` stay a list of `{name}` objects.
- Top-level keys this parser does not know yet: scalars as `aws.waf.<snake_case>`, objects and lists in
  `aws.waf.unmapped` (flattened), so format drift is kept, never dropped.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from worker.parsers._fields import ABSENT, is_ip
from worker.parsers._json_records import json_head, json_original, keep_unmapped, present, reroute_sibling
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError

_RULE_LISTS = {
    "terminatingRuleMatchDetails": "terminating_rule_match_details",
    "ruleGroupList": "rule_group_list",
    "nonTerminatingMatchingRules": "non_terminating_matching_rules",
    "rateBasedRuleList": "rate_based_rule_list",
}
_LONGS = {
    "requestBodySize": "request_body_size",
    "requestBodySizeInspectedByWAF": "request_body_size_inspected_by_waf",
    "responseCodeSent": "response_code_sent",
}
_HANDLED = frozenset(
    set(_RULE_LISTS)
    | set(_LONGS)
    | {
        "timestamp", "formatVersion", "webaclId", "terminatingRuleId", "terminatingRuleType", "action",
        "httpSourceName", "httpSourceId", "httpRequest", "labels", "requestHeadersInserted", "captchaResponse",
        "challengeResponse", "ja3Fingerprint", "ja4Fingerprint", "oversizeFields",
    }
)
_EVENT_TYPES = {"ALLOW": ["access", "allowed"], "BLOCK": ["access", "denied"]}


def clean(value: Any) -> Any:
    """A copy without nulls, empty strings, `-` and empty containers (Elastic's clean-up), keys sorted.

    Keys are sorted so that the stored objects do not depend on the order a WAF endpoint wrote them in.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            item = clean(value[key])
            if present(item):
                out[key] = item
        return out
    if isinstance(value, list):
        return [c for c in (clean(item) for item in value) if c is not None and c != {}]
    return value


def _long(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


class WafParser(LogParser):
    """Stateless but for a one-second timestamp cache; one WAF log record (a JSON object) at a time."""

    log_type: ClassVar[str] = "waf"
    framing = "json_records"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.kind": "keyword",
        "event.category": "keyword",
        "event.type": "keyword",
        "event.action": "keyword",
        "cloud.provider": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "cloud.service.name": "keyword",
        "source.ip": "ip",
        "source.address": "keyword",
        "source.geo.country_iso_code": "keyword",
        "related.ip": "ip",
        "rule.id": "keyword",
        "rule.ruleset": "keyword",
        "http.request.id": "keyword",
        "http.request.method": "keyword",
        "http.request.referrer": "keyword",
        "http.version": "keyword",
        "network.protocol": "keyword",
        "network.transport": "keyword",
        "url.path": "keyword",
        "url.query": "keyword",
        "url.fragment": "keyword",
        "url.scheme": "keyword",
        "host.domain": "keyword",
        "user_agent.original": "keyword",
        "tls.client.ja3": "keyword",
        "aws.waf.arn": "keyword",
        "aws.waf.id": "keyword",
        "aws.waf.web_acl_name": "keyword",
        "aws.waf.format_version": "keyword",
        "aws.waf.source.id": "keyword",
        "aws.waf.source.name": "keyword",
        "aws.waf.request.headers": "flattened",
        "aws.waf.request_headers_inserted": "flattened",
        "aws.waf.terminating_rule_match_details": "flattened",
        "aws.waf.rule_group_list": "flattened",
        "aws.waf.non_terminating_matching_rules": "flattened",
        "aws.waf.rate_based_rule_list": "flattened",
        "aws.waf.labels.name": "keyword",
        "aws.waf.oversize_fields": "keyword",
        "aws.waf.ja4_fingerprint": "keyword",
        "aws.waf.request_body_size": "long",
        "aws.waf.request_body_size_inspected_by_waf": "long",
        "aws.waf.response_code_sent": "long",
        "aws.waf.captcha_response.response_code": "long",
        "aws.waf.captcha_response.solve_timestamp": "date",
        "aws.waf.captcha_response.failure_reason": "keyword",
        "aws.waf.challenge_response.response_code": "long",
        "aws.waf.challenge_response.solve_timestamp": "date",
        "aws.waf.challenge_response.failure_reason": "keyword",
        "aws.waf.unmapped": "flattened",
    }
    example = (
        '{"timestamp":1592361810888,"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:123456789012:global/'
        'webacl/hello-world/5933d6d9-9dde-js82-v8aw-9ck28nv9","terminatingRuleId":"RG-Reference",'
        '"terminatingRuleType":"GROUP","action":"BLOCK","terminatingRuleMatchDetails":[{"conditionType":"XSS",'
        '"location":"HEADER","matchedData":["<","frameset"]}],"httpSourceName":"-","httpSourceId":"-",'
        '"ruleGroupList":[{"ruleGroupId":"arn:aws:wafv2:us-east-1:123456789012:global/rulegroup/hello-world/'
        'c05lb698-1f11-4m41-aef4-99a506d53f4b","terminatingRule":{"ruleId":"RuleA-XSS","action":"BLOCK",'
        '"ruleMatchDetails":null},"nonTerminatingMatchingRules":[{"ruleId":"RuleB-SQLi","action":"COUNT",'
        '"ruleMatchDetails":[{"conditionType":"SQL_INJECTION","location":"HEADER","matchedData":["10","and",'
        '"1"]}]}],"excludedRules":null}],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"httpRequest":'
        '{"clientIp":"89.160.20.156","country":"US","headers":[{"name":"Host","value":"localhost:1989"},'
        '{"name":"User-Agent","value":"curl/7.61.1"},{"name":"Accept","value":"*/*"},{"name":"xssfoo","value":'
        '"<frameset onload=alert(1)>"},{"name":"bar","value":"10 AND 1=1"}],"uri":"/foo","args":"",'
        '"httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"rid"},"labels":[{"name":"value"}]}'
    )
    routing = (
        "S3 key `AWSLogs/<account>/WAFLogs/<region>/<web-acl>/...`; Firehose-written objects and CloudWatch Logs "
        "groups named `aws-waf-logs-*`; content: a JSON object with `webaclId` and `httpRequest`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        first = json_head(head, None)
        return '"webaclId"' in first[:4096] and '"httpRequest"' in first

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._second = -1
        self._second_text = ""

    def _timestamp(self, ms: int) -> str:
        second, milli = divmod(ms, 1000)
        if second != self._second:
            try:
                tm = time.gmtime(second)
            except (OverflowError, OSError, ValueError):
                raise ParseError(f"WAF timestamp out of range: {ms!r}") from None
            self._second_text = (
                f"{tm[0]:04d}-{tm[1]:02d}-{tm[2]:02d}T{tm[3]:02d}:{tm[4]:02d}:{tm[5]:02d}."
            )
            self._second = second
        return f"{self._second_text}{milli:03d}Z"

    def parse(self, record: Any) -> dict[str, Any] | None:
        if not isinstance(record, dict):
            raise ParseError(f"WAF record is a JSON {type(record).__name__}, not an object")
        stamp = record.get("timestamp")
        request = record.get("httpRequest")
        if "webaclId" not in record and not isinstance(request, dict):
            reroute_sibling(record, self.log_type)
            raise ParseError("not a WAF log record: no webaclId and no httpRequest object")
        ms = _long(stamp)
        if ms is None:
            raise ParseError(f"WAF record has no epoch-millisecond timestamp (got {stamp!r})")

        waf: dict[str, Any] = {}
        event: dict[str, Any] = {"kind": "event", "category": ["web"]}
        cloud: dict[str, Any] = {"provider": "aws"}
        doc: dict[str, Any] = {"@timestamp": self._timestamp(ms), "event": event, "cloud": cloud,
                               "aws": {"waf": waf}}

        arn = record.get("webaclId")
        if isinstance(arn, str) and arn:
            waf["arn"] = arn
            parts = arn.split(":", 5)
            if len(parts) == 6 and parts[0] == "arn":
                if parts[2]:
                    cloud["service"] = {"name": parts[2]}
                if parts[3]:
                    cloud["region"] = parts[3]
                if parts[4]:
                    cloud["account"] = {"id": parts[4]}
                if parts[5]:
                    waf["id"] = parts[5]
                    path = parts[5].split("/")
                    if len(path) >= 3 and path[1] == "webacl" and path[2]:
                        waf["web_acl_name"] = path[2]
        if "region" not in cloud and self.ctx.region:
            cloud["region"] = self.ctx.region
        if "account" not in cloud and self.ctx.account_id:
            cloud["account"] = {"id": self.ctx.account_id}

        action = record.get("action")
        if present(action):
            event["action"] = action
        event["type"] = list(_EVENT_TYPES.get(action, ("access",))) if isinstance(action, str) else ["access"]
        rule: dict[str, Any] = {}
        if present(value := record.get("terminatingRuleId")):
            rule["id"] = value
        if present(value := record.get("terminatingRuleType")):
            rule["ruleset"] = value
        if rule:
            doc["rule"] = rule
        source_ref: dict[str, Any] = {}
        if present(value := record.get("httpSourceName")):
            source_ref["name"] = value
        if present(value := record.get("httpSourceId")):
            source_ref["id"] = value
        if source_ref:
            waf["source"] = source_ref
        if (value := record.get("formatVersion")) is not None and value != "":
            waf["format_version"] = str(value)

        if isinstance(request, dict):
            self._request(request, doc, waf)
        elif request is not None:
            raise ParseError(f"WAF httpRequest is a JSON {type(request).__name__}, not an object")

        for key, name in _RULE_LISTS.items():
            value = record.get(key)
            if value:
                cleaned = clean(value)
                if present(cleaned):
                    waf[name] = cleaned
        inserted = record.get("requestHeadersInserted")
        if isinstance(inserted, list) and inserted:
            headers = _header_map(inserted, lower=False)
            if headers:
                waf["request_headers_inserted"] = headers
        labels = record.get("labels")
        if isinstance(labels, list) and labels:
            kept = [{"name": item["name"]} for item in labels if isinstance(item, dict) and present(item.get("name"))]
            if kept:
                waf["labels"] = kept
        for key, name in _LONGS.items():
            if (number := _long(record.get(key))) is not None:
                waf[name] = number
        for key, name in (("captchaResponse", "captcha_response"), ("challengeResponse", "challenge_response")):
            value = record.get(key)
            if isinstance(value, dict):
                response = self._challenge(value)
                if response:
                    waf[name] = response
        if present(value := record.get("ja3Fingerprint")):
            doc["tls"] = {"client": {"ja3": value}}
        if present(value := record.get("ja4Fingerprint")):
            waf["ja4_fingerprint"] = value
        if present(value := record.get("oversizeFields")):
            waf["oversize_fields"] = value

        keep_unmapped(record, _HANDLED, waf)
        if self.ctx.keep_original:
            event["original"] = json_original(record)
        return doc

    @staticmethod
    def _request(request: dict[str, Any], doc: dict[str, Any], waf: dict[str, Any]) -> None:
        client = request.get("clientIp")
        if present(client):
            source: dict[str, Any] = {"address": client}
            if isinstance(client, str) and is_ip(client):
                source["ip"] = client
                doc["related"] = {"ip": [client]}
            country = request.get("country")
            if present(country):
                source["geo"] = {"country_iso_code": country}
            doc["source"] = source
        http: dict[str, Any] = {}
        http_request: dict[str, Any] = {}
        if present(value := request.get("requestId")):
            http_request["id"] = value
        if present(value := request.get("httpMethod")):
            http_request["method"] = value
        version = request.get("httpVersion")
        if isinstance(version, str) and "/" in version:
            protocol, _, number = version.partition("/")
            network: dict[str, Any] = {}
            if protocol:
                network["protocol"] = protocol.lower()
            if number:
                http["version"] = number
            if network.get("protocol") == "http":
                network["transport"] = "udp" if number.startswith("3") else "tcp"
            if network:
                doc["network"] = network
        url: dict[str, Any] = {}
        if present(value := request.get("uri")):
            url["path"] = value
        if present(value := request.get("args")):
            url["query"] = value
        if present(value := request.get("fragment")):
            url["fragment"] = value
        if present(value := request.get("scheme")):
            url["scheme"] = value
        if url:
            doc["url"] = url
        if present(value := request.get("host")):
            doc["host"] = {"domain": value}
        headers = request.get("headers")
        if isinstance(headers, list) and headers:
            header_map = _header_map(headers, lower=True)
            if header_map:
                waf["request"] = {"headers": header_map}
                agent = header_map.get("user-agent")
                if agent is not None:
                    doc["user_agent"] = {"original": agent[0] if isinstance(agent, list) else agent}
                referrer = header_map.get("referer")
                if referrer is not None:
                    http_request["referrer"] = referrer[0] if isinstance(referrer, list) else referrer
        if http_request:
            http["request"] = http_request
        if http:
            doc["http"] = http

    def _challenge(self, value: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if (code := _long(value.get("responseCode"))) is not None:
            out["response_code"] = code
        solved = _long(value.get("solveTimestamp"))
        if solved:  # 0: never solved
            # AWS documents epoch seconds here; accept milliseconds too.
            out["solve_timestamp"] = self._timestamp(solved if solved >= 100_000_000_000 else solved * 1000)
        if present(reason := value.get("failureReason")):
            out["failure_reason"] = reason
        return out


def _header_map(headers: list[Any], lower: bool) -> dict[str, Any]:
    """`[{name, value}]` -> `{name: value}`; a repeated name keeps every value, in order, as a list."""
    out: dict[str, Any] = {}
    for item in headers:
        try:
            name = item["name"]
            value = item["value"]
        except (KeyError, TypeError, IndexError):
            continue  # not a {name, value} object (an AWS doc example writes "myValue")
        if not value or value == ABSENT or name.__class__ is not str or not name:
            continue
        key = name.lower() if lower else name
        previous = out.get(key)
        if previous is None:
            out[key] = value
        elif previous.__class__ is list:
            previous.append(value)
        else:
            out[key] = [previous, value]
    return out


PARSER = WafParser
