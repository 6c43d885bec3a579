"""`sluice import-esf`: every documented ESF example converts to a valid Sluice config; each mapping and each
reported limitation is pinned by a test; no secret reaches the output."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.config import parse_config
from worker.import_esf import EsfImportError, ImportResult, convert, run_import

EXAMPLES = Path(__file__).parent / "esf_examples"
ROOT = Path(__file__).parents[2]
QUEUE = "arn:aws:sqs:eu-west-1:123456789012:logs-queue"
LITERAL_SECRETS = ("not-a-real-password", "ZXhhbXBsZS1pZDpleGFtcGxlLXNlY3JldA==")


def _es(**args: Any) -> dict[str, Any]:
    return {"type": "elasticsearch", "args": {"elasticsearch_url": "https://os.example.com:443",
                                              "username": "u", "password": "arn:aws:secretsmanager:eu-west-1:"
                                              "123456789012:secret:os:password", **args}}


def _input(kind: str = "s3-sqs", ident: str = QUEUE, outputs: list[dict[str, Any]] | None = None,
           **keys: Any) -> Any:
    return {"type": kind, "id": ident, "outputs": [_es()] if outputs is None else outputs, **keys}


def _convert(*inputs: Any, **kwargs: Any) -> ImportResult:
    return convert({"inputs": list(inputs)}, **kwargs)


def _notes(result: ImportResult) -> str:
    return "\n".join(str(n) for n in result.notes)


def _only_source(result: ImportResult) -> Any:
    (body,) = result.config["sources"].values()
    return body


def _valid(result: ImportResult) -> None:
    """What the user gets: the YAML text, loaded back, validated once the variables are set."""
    text = result.to_yaml()
    loaded = yaml.safe_load(text)
    assert loaded == result.config
    parse_config(loaded, env=result.placeholder_env())
    for secret in LITERAL_SECRETS:
        assert secret not in text and secret not in result.report()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", yaml.safe_dump(result.config)))
    assert used == set(result.placeholders), "every placeholder is used and listed"


# -- the documented examples -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_documented_example_converts_to_a_valid_config(path: Path) -> None:
    result = convert(yaml.safe_load(path.read_text()))
    _valid(result)
    assert result.config["sources"]


def test_deploy_sample_maps_every_input_type() -> None:
    result = convert(yaml.safe_load((EXAMPLES / "deploy_sample.yaml").read_text()))
    sources = result.config["sources"]
    assert {n: b["type"] for n, b in sources.items()} == {
        "vpc-flow-notifications": "sqs_s3", "app-log-lines": "sqs", "app-events": "kinesis",
        "cloudwatch_logs": "kinesis"}
    assert sources["cloudwatch_logs"]["parser_options"] == {
        "log_groups": {"/aws/lambda/checkout": "lambda", "payments-service": "generic"}}
    assert result.config["aws"] == {"region": "eu-west-1"}
    assert _notes(result).count("logstash output dropped") == 5


# -- inputs ----------------------------------------------------------------------------------------------------

def test_s3_sqs_becomes_sqs_s3_with_the_queue_url_of_the_arn() -> None:
    body = _only_source(_convert(_input()))
    assert body == {"type": "sqs_s3", "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/logs-queue",
                    "fallback_log_type": "generic"}


def test_china_partition_queue_url() -> None:
    body = _only_source(_convert(_input(ident="arn:aws-cn:sqs:cn-north-1:123456789012:q")))
    assert body["queue_url"] == "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q"


def test_sqs_becomes_sqs_keeping_its_generic_fallback() -> None:
    body = _only_source(_convert(_input("sqs")))
    assert body == {"type": "sqs", "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/logs-queue"}


def test_kinesis_keeps_the_stream_arn_and_its_region() -> None:
    result = _convert(_input(), _input("kinesis-data-stream", "arn:aws:kinesis:us-west-2:123456789012:stream/s1"))
    body = result.config["sources"]["s1"]
    assert body == {"type": "kinesis", "stream": "arn:aws:kinesis:us-west-2:123456789012:stream/s1",
                    "region": "us-west-2", "fallback_log_type": "generic"}
    assert result.config["aws"]["region"] == "eu-west-1"


def test_sqs_queue_in_another_region_is_reported() -> None:
    result = _convert(_input(), _input(ident="arn:aws:sqs:eu-west-1:123456789012:q2"),
                      _input(ident="arn:aws:sqs:us-east-2:123456789012:far"))
    assert result.config["aws"]["region"] == "eu-west-1"
    assert "run this source in a second worker" in _notes(result)
    assert "aws.region: us-east-2" in _notes(result)


GROUP = "arn:aws:logs:eu-west-1:123456789012:log-group:{}:*"


def test_cloudwatch_logs_become_one_kinesis_source_fed_by_a_subscription() -> None:
    result = _convert(_input("cloudwatch-logs", GROUP.format("/aws/lambda/api")),
                      _input("cloudwatch-logs", GROUP.format("aws-waf-logs-edge")),
                      _input("cloudwatch-logs", GROUP.format("my-app")))
    body = _only_source(result)
    assert body == {"type": "kinesis", "stream": "${SLUICE_CLOUDWATCH_STREAM}",
                    "parser_options": {"log_groups": {"/aws/lambda/api": "lambda", "aws-waf-logs-edge": "waf",
                                                      "my-app": "generic"}}}
    assert "SLUICE_CLOUDWATCH_STREAM" in result.placeholders
    assert "subscription filter" in _notes(result)
    assert "# sources.cloudwatch_logs: CloudWatch Logs log group(s)" in result.to_yaml()
    _valid(result)


def test_cloudwatch_group_type_from_the_data_stream_name() -> None:
    result = _convert(_input("cloudwatch-logs", GROUP.format("flows"),
                             outputs=[_es(es_datastream_name="logs-aws.vpcflow-default")]))
    body = _only_source(result)
    assert body["parser_options"] == {"log_groups": {"flows": "vpc_flow"}}
    assert body["index"] == "logs-aws.vpcflow-default"


def test_cloudwatch_groups_with_different_settings_get_their_own_streams() -> None:
    result = _convert(_input("cloudwatch-logs", GROUP.format("a"), tags=["x"]),
                      _input("cloudwatch-logs", GROUP.format("b")),
                      _input("cloudwatch-logs", "arn:aws:logs:us-west-2:123456789012:log-group:c:*"))
    sources = result.config["sources"]
    assert [b["stream"] for b in sources.values()] == [
        "${SLUICE_CLOUDWATCH_STREAM_1}", "${SLUICE_CLOUDWATCH_STREAM_2}", "${SLUICE_CLOUDWATCH_STREAM_3}"]
    assert sources["cloudwatch_a"]["processing"] == {"tags": ["x"]}
    assert sources["cloudwatch_c"]["region"] == "us-west-2"
    _valid(result)


def test_cloudwatch_log_stream_input_is_widened_to_its_group_and_reported() -> None:
    result = _convert(_input("cloudwatch-logs",
                             "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/web:log-stream:web/abc"))
    assert _only_source(result)["parser_options"] == {"log_groups": {"/ecs/web": "generic"}}
    assert "named log stream web/abc only" in _notes(result)


def test_bad_inputs_are_skipped_and_reported() -> None:
    result = _convert(_input(), {"type": "s3", "id": QUEUE}, _input("sqs", "my-queue"), "text",
                      _input(ident="arn:aws:sqs:eu-west-1:123456789012:other", extra_key=1))
    assert len(result.config["sources"]) == 2
    notes = _notes(result)
    assert "input type 's3' is not one of" in notes
    assert "`id` must be the ARN of the sqs resource" in notes
    assert "inputs[3]: not a mapping" in notes
    assert "unknown key `extra_key` ignored" in notes


def test_template_placeholders_in_arns_are_reported() -> None:
    result = _convert(_input(ident="arn:aws:sqs:%REGION%:%ACCOUNT%:%QUEUENAME%"))
    assert "looks like a template placeholder" in _notes(result)


# -- processing ------------------------------------------------------------------------------------------------

def test_processing_options_map_one_to_one() -> None:
    body = _only_source(_convert(_input(
        include=["[a-zA-Z]"], exclude=["skip this", 42], json_content_type="ndjson",
        expand_event_list_from_field="Records", root_fields_to_add_to_expanded_event=["owner", "logGroup"],
        tags=["tag1", "tag2"])))
    assert body["processing"] == {
        "include": ["[a-zA-Z]"], "exclude": ["skip this", "42"], "json_content_type": "ndjson",
        "expand_event_list_from_field": "Records", "root_fields_to_add_to_expanded_event": ["owner", "logGroup"],
        "tags": ["tag1", "tag2"]}


def test_json_content_type_disabled_is_the_default_and_all_roots() -> None:
    body = _only_source(_convert(_input(json_content_type="disabled", expand_event_list_from_field="Records",
                                        root_fields_to_add_to_expanded_event="all")))
    assert body["processing"] == {"expand_event_list_from_field": "Records", "json_content_type": "ndjson",
                                  "root_fields_to_add_to_expanded_event": "all"}


def test_invalid_processing_values_are_reported() -> None:
    result = _convert(_input(include="x", json_content_type="yaml", expand_event_list_from_field=3,
                             root_fields_to_add_to_expanded_event=7, tags="t"))
    assert "processing" not in _only_source(result)
    notes = _notes(result)
    for text in ("`include` is not a list", "json_content_type 'yaml'", "expand_event_list_from_field is not",
                 "root_fields_to_add_to_expanded_event is neither", "`tags` is not a list"):
        assert text in notes


def test_multiline_pattern_maps_with_every_option() -> None:
    ml = {"type": "pattern", "pattern": r"^\[", "negate": True, "match": "before", "max_lines": 50,
          "max_bytes": 4096, "timeout": 2}
    body = _only_source(_convert(_input(multiline=ml)))
    assert body["processing"]["multiline"] == ml


def test_multiline_count_and_while_pattern() -> None:
    result = _convert(_input(multiline={"type": "count", "count_lines": 3}),
                      _input(ident=QUEUE + "2", multiline={"type": "while_pattern", "pattern": r"^\s",
                                                          "negate": True}))
    first, second = result.config["sources"].values()
    assert first["processing"]["multiline"] == {"type": "count", "count_lines": 3}
    assert second["processing"]["multiline"] == {"type": "while_pattern", "pattern": r"^\s", "negate": True}
    _valid(result)


def test_multiline_options_sluice_lacks_are_reported() -> None:
    result = _convert(_input(multiline={"type": "pattern", "pattern": "Start", "negate": True, "match": "after",
                                        "flush_pattern": "End", "skip_newline": True, "max_lines": 0,
                                        "max_bytes": 100}))
    assert _only_source(result)["processing"]["multiline"] == {
        "type": "pattern", "pattern": "Start", "negate": True, "match": "after", "max_bytes": 1024}
    notes = _notes(result)
    for text in ("flush_pattern cannot be mapped", "skip_newline cannot be mapped",
                 "max_lines 0 (unlimited in ESF when 0 or less) is not supported", "max_bytes 100 is below"):
        assert text in notes
    _valid(result)


def test_unusable_multiline_is_dropped_with_a_note() -> None:
    result = _convert(_input(multiline={"type": "regex"}),
                      _input(ident=QUEUE + "2", multiline={"type": "count"}),
                      _input(ident=QUEUE + "3", multiline={"type": "pattern"}),
                      _input(ident=QUEUE + "4", multiline={"type": "pattern", "pattern": "x", "match": "around"}))
    bodies = list(result.config["sources"].values())
    assert all("multiline" not in b.get("processing", {}) for b in bodies[:3])
    assert bodies[3]["processing"]["multiline"] == {"type": "pattern", "pattern": "x"}
    notes = _notes(result)
    for text in ("type 'regex' is not", "count_lines None is not", "without a usable pattern",
                 "match 'around' is not after/before"):
        assert text in notes


def test_documentation_style_doubled_backslashes_are_repaired_when_they_cannot_compile() -> None:
    # ESF's docs write '^\\[' in single quotes: a regular expression that does not compile, in ESF either.
    esf = yaml.safe_load("inputs:\n- type: s3-sqs\n  id: " + QUEUE + "\n  multiline: {type: pattern, "
                         "pattern: '^\\\\[', negate: true, match: after}\n  include: ['(unclosed']\n  outputs: []")
    result = convert(esf)
    processing = _only_source(result)["processing"]
    assert processing["multiline"]["pattern"] == r"^\["
    assert "include" not in processing
    notes = _notes(result)
    assert "used '^\\\\[', what the doubled backslashes" in notes
    assert "'(unclosed' is not a valid regular expression" in notes


def test_environment_syntax_in_patterns_is_escaped_and_in_tags_dropped() -> None:
    result = _convert(_input(exclude=[r"user=${USER}"], tags=["${TEAM}", "ok"]))
    processing = _only_source(result)["processing"]
    assert processing == {"exclude": [r"user=$\{USER}"], "tags": ["ok"]}
    assert re.search(processing["exclude"][0], "user=${USER}") is None  # `$` is an anchor, as in ESF
    assert "tags containing `${` dropped" in _notes(result)
    parse_config(yaml.safe_load(result.to_yaml()), env=result.placeholder_env())


# -- outputs ---------------------------------------------------------------------------------------------------

def test_elasticsearch_output_maps_to_opensearch() -> None:
    result = _convert(_input(outputs=[_es(batch_max_actions=250, batch_max_bytes=2 << 20,
                                          es_datastream_name="logs-app-prod")]))
    assert result.config["opensearch"] == {
        "hosts": ["https://os.example.com:443"],
        "auth": {"type": "basic", "username": "u", "password": "${SLUICE_OPENSEARCH_PASSWORD}"},
        "bulk": {"max_docs": 250, "max_bytes": 2 << 20}}
    assert _only_source(result)["index"] == "logs-app-prod"
    assert "logs-app-prod" in _notes(result) and "--sluice-index-names" in _notes(result)


def test_secrets_manager_values_become_variables_listed_with_their_arn() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:es_secrets"
    result = _convert(_input(outputs=[{"type": "elasticsearch", "args": {
        "elasticsearch_url": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:es_url",
        "username": arn + ":username", "password": arn + ":password"}}]))
    assert result.config["opensearch"] == {
        "hosts": ["${SLUICE_OPENSEARCH_URL}"],
        "auth": {"type": "basic", "username": "${SLUICE_OPENSEARCH_USERNAME}",
                 "password": "${SLUICE_OPENSEARCH_PASSWORD}"}}
    assert arn + ":password" in result.placeholders["SLUICE_OPENSEARCH_PASSWORD"]
    assert "key `password` of the JSON secret `es_secrets`" in result.placeholders["SLUICE_OPENSEARCH_PASSWORD"]
    assert "secret:es_url" in result.report()


def test_literal_secrets_are_never_copied() -> None:
    result = _convert(_input(outputs=[{"type": "elasticsearch", "args": {
        "elasticsearch_url": "https://forwarder:hunter2@os.example.com", "username": "forwarder",
        "password": "hunter2"}}]))
    text = result.to_yaml() + result.report()
    assert "hunter2" not in text
    assert result.config["opensearch"]["hosts"] == ["https://os.example.com"]
    assert "credentials in `elasticsearch_url` not copied" in _notes(result)
    assert "held in clear" in result.placeholders["SLUICE_OPENSEARCH_PASSWORD"]


def test_username_without_password_gets_a_variable() -> None:
    result = _convert(_input(outputs=[{"type": "elasticsearch", "args": {
        "elasticsearch_url": "https://os.example.com", "username": "u"}}]))
    assert result.config["opensearch"]["auth"]["password"] == "${SLUICE_OPENSEARCH_PASSWORD}"
    assert "`username` without `password`" in _notes(result)


def test_cloud_id_cannot_be_mapped() -> None:
    result = _convert(_input(outputs=[{"type": "elasticsearch", "args": {"cloud_id": "dep:abc", "api_key": "k"}}]))
    assert result.config["opensearch"]["hosts"] == ["${SLUICE_OPENSEARCH_URL}"]
    assert "`cloud_id` cannot be mapped" in _notes(result)
    _valid(result)


def test_api_key_becomes_basic_placeholders_or_sigv4_on_aws() -> None:
    plain = _convert(_input(outputs=[{"type": "elasticsearch", "args": {
        "elasticsearch_url": "https://os.example.com", "api_key": "secret-key"}}]))
    assert plain.config["opensearch"]["auth"] == {
        "type": "basic", "username": "${SLUICE_OPENSEARCH_USERNAME}", "password": "${SLUICE_OPENSEARCH_PASSWORD}"}
    assert "`api_key` cannot be mapped" in _notes(plain)
    assert "secret-key" not in plain.to_yaml()
    aws = _convert(_input(outputs=[{"type": "elasticsearch", "args": {
        "elasticsearch_url": "https://search-logs-abc.us-east-1.es.amazonaws.com:443", "api_key": "k"}}]))
    assert aws.config["opensearch"]["auth"] == {"type": "sigv4", "service": "es", "region": "us-east-1"}
    assert "SigV4" in _notes(aws)


def test_amazon_endpoint_without_credentials_signs_requests() -> None:
    result = _convert(_input(outputs=[{"type": "elasticsearch", "args": {
        "elasticsearch_url": "https://abc123.eu-west-1.aoss.amazonaws.com"}}]))
    assert result.config["opensearch"]["auth"] == {"type": "sigv4", "service": "aoss"}


def test_both_api_key_and_username_use_the_username() -> None:
    result = _convert(_input(outputs=[_es(api_key="k")]))
    assert result.config["opensearch"]["auth"]["type"] == "basic"
    assert "`api_key` dropped" in _notes(result)


def test_unmappable_output_arguments_are_reported() -> None:
    result = _convert(_input(outputs=[_es(ssl_assert_fingerprint="1C:46", es_dead_letter_index="dlq",
                                          batch_max_bytes=10, batch_max_actions=True, compression=1)]))
    assert "bulk" not in result.config["opensearch"]
    notes = _notes(result)
    for text in ("`ssl_assert_fingerprint` cannot be mapped", "`es_dead_letter_index` cannot be mapped",
                 "batch_max_bytes 10 is below", "batch_max_actions True is not", "unknown argument `compression`"):
        assert text in notes


def test_logstash_and_extra_outputs_are_dropped_and_reported() -> None:
    other = {"type": "elasticsearch", "args": {"elasticsearch_url": "https://other.example.com", "api_key": "k"}}
    result = _convert(
        _input(outputs=[_es(), other, {"type": "logstash", "args": {"logstash_url": "https://ls:5044"}},
                        {"type": "kafka", "args": {}}]),
        _input(ident=QUEUE + "2", outputs=[other]),
        _input(ident=QUEUE + "3", outputs=[{"type": "logstash", "args": {"logstash_url": "https://ls:5044"}}]),
        _input(ident=QUEUE + "4", outputs=[_es(batch_max_actions=10)]))
    assert result.config["opensearch"]["hosts"] == ["https://os.example.com:443"]
    notes = _notes(result)
    assert "second elasticsearch output (to https://other.example.com) dropped" in notes
    assert "logstash output dropped" in notes
    assert "output 'kafka'" in notes
    assert "now go to https://os.example.com:443 instead of https://other.example.com" in notes
    assert "queue logs-queue3): no elasticsearch output" in notes
    assert "output settings differ from the first input's (batch_max_actions)" in notes
    assert len(result.config["sources"]) == 4


def test_no_elasticsearch_output_at_all() -> None:
    result = _convert(_input(outputs=[]))
    assert result.config["opensearch"] == {"hosts": ["${SLUICE_OPENSEARCH_URL}"]}
    assert "no input has an elasticsearch output" in _notes(result)
    _valid(result)


def test_data_stream_name_declares_the_log_type() -> None:
    result = _convert(_input(outputs=[_es(es_datastream_name="logs-aws.cloudtrail-default")]))
    body = _only_source(result)
    assert body["log_type"] == "cloudtrail" and "fallback_log_type" not in body
    assert "log_type cloudtrail inferred from es_datastream_name" in _notes(result)
    elb = _only_source(_convert(_input(outputs=[_es(es_datastream_name="logs-aws.elb_logs-default")])))
    assert "log_type" not in elb  # ALB, classic ELB or NLB: left to routing


def test_sluice_index_names_option_drops_the_data_stream_names() -> None:
    result = _convert(_input(outputs=[_es(es_datastream_name="logs-aws.vpcflow-default")]), keep_index_names=False)
    body = _only_source(result)
    assert "index" not in body and body["log_type"] == "vpc_flow"


def test_dead_letters_are_placeholders_and_top_level_keys_reported() -> None:
    result = convert({"inputs": [_input()], "outputs": []})
    assert result.config["dead_letters"] == {"bucket": "${SLUICE_BACKUP_BUCKET}",
                                             "replay_queue_url": "${SLUICE_REPLAY_QUEUE_URL}"}
    assert {"SLUICE_BACKUP_BUCKET", "SLUICE_REPLAY_QUEUE_URL"} <= set(result.placeholders)
    assert "outputs: unknown top-level key" in _notes(result)


@pytest.mark.parametrize("esf", [None, [], {"inputs": "x"}, {"inputs": []}, {"inputs": [{"type": "s3"}]}])
def test_nothing_convertible_is_an_error(esf: Any) -> None:
    with pytest.raises(EsfImportError):
        convert(esf)


# -- the command -----------------------------------------------------------------------------------------------

def test_cli_writes_yaml_to_stdout_and_the_report_to_stderr() -> None:
    path = EXAMPLES / "deploy_sample.yaml"
    proc = subprocess.run([sys.executable, "-m", "worker", "import-esf", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    expected = convert(yaml.safe_load(path.read_text()))
    assert yaml.safe_load(proc.stdout) == expected.config
    assert "logstash output dropped" in proc.stderr and "SLUICE_BACKUP_BUCKET" in proc.stderr
    assert "not-a-real-password" not in proc.stdout + proc.stderr


def test_cli_output_file_and_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sluice.yaml"
    assert run_import(str(EXAMPLES / "tags.yaml"), str(out)) == 0
    assert capsys.readouterr().out == ""
    assert yaml.safe_load(out.read_text())["sources"]["alb-notifications"]["processing"]["tags"] == [
        "tag1", "tag2", "tag3"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [unclosed")
    assert run_import(str(bad)) == 2
    assert run_import(str(tmp_path / "missing.yaml")) == 2
    bad.write_text("just text")
    assert run_import(str(bad)) == 2
    err = capsys.readouterr().err
    assert "invalid YAML" in err and "No such file" in err and "not a mapping" in err


def test_cli_subcommand_is_declared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from worker.__main__ import main

    out = tmp_path / "o.yaml"
    assert main(["import-esf", str(EXAMPLES / "ssl_fingerprint.yaml"), "--output", str(out),
                 "--sluice-index-names"]) == 0
    assert "index" not in yaml.safe_load(out.read_text())["sources"]["dev-access-logs"]


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_imported_config_passes_sluice_check_config(example: str, tmp_path: Path) -> None:
    """What a user does after importing: `sluice import-esf ... > sluice.yaml && sluice check-config sluice.yaml`
    (with the reported variables set)."""
    from worker.__main__ import main

    out = tmp_path / "sluice.yaml"
    assert run_import(str(EXAMPLES / example), str(out)) == 0
    result = convert(yaml.safe_load((EXAMPLES / example).read_text()))
    with pytest.MonkeyPatch.context() as mp:
        for name, value in result.placeholder_env().items():
            mp.setenv(name, value)
        assert main(["check-config", str(out)]) == 0
