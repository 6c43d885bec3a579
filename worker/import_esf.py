"""`sluice import-esf`: an Elastic Serverless Forwarder `config.yaml` -> a Sluice config, and what did not map.

ESF and Sluice read the same AWS inputs and share the per-input knobs (include/exclude, multiline, JSON content
type, event-list expansion, tags), so most of an ESF config has an exact counterpart. The rest differs by
design: ESF ships each input to several Elasticsearch/Logstash outputs, Sluice to one OpenSearch cluster; ESF
reads CloudWatch Logs through a Lambda subscription, Sluice through a Kinesis stream; ESF resolves Secrets
Manager ARNs itself, Sluice reads its environment. A converter that dropped such a difference silently would
yield a worker that starts and quietly behaves otherwise, so every one is reported (on stderr, and as comments
in the YAML), and every value only the user can supply is a `${VAR}` placeholder: `sluice run` refuses to start
until it is set, instead of running with a guess. A secret never reaches the output, literal or not.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import ValidationError

from worker.config import ConfigError, MultilineConfig, parse_config

# Log groups AWS names by convention. The same rules the cloudwatch_logs parser applies to groups nobody mapped
# (one source of truth), so an inferred mapping never disagrees with what Sluice would do by itself.
from worker.parsers.cloudwatch_logs import _GROUP_RULES

ESF_INPUT_TYPES = ("s3-sqs", "sqs", "kinesis-data-stream", "cloudwatch-logs")
_INPUT_KEYS = frozenset({"type", "id", "outputs", "tags", "include", "exclude", "multiline", "json_content_type",
                         "expand_event_list_from_field", "root_fields_to_add_to_expanded_event"})
_ES_KEYS = frozenset({"elasticsearch_url", "cloud_id", "username", "password", "api_key", "es_datastream_name",
                      "es_dead_letter_index", "batch_max_actions", "batch_max_bytes", "ssl_assert_fingerprint"})
_MULTILINE_KEYS = frozenset({"type", "pattern", "negate", "match", "flush_pattern", "max_lines", "max_bytes",
                             "count_lines", "skip_newline", "timeout"})
# Elastic AWS integration datasets (`logs-<dataset>-<namespace>`) whose content has a Sluice log type. An ESF user
# naming such a data stream declares what the input carries; `aws.elb_logs` is left out (ALB, ELB or NLB?).
_DATASET_LOG_TYPES = {
    "aws.cloudtrail": "cloudtrail",
    "aws.vpcflow": "vpc_flow",
    "aws.waf": "waf",
    "aws.firewall_logs": "network_firewall",
    "aws.s3access": "s3_access",
    "aws.cloudfront_logs": "cloudfront",
    "aws.route53_public_logs": "route53_public",
    "aws.route53_resolver_logs": "route53_resolver",
}
_ARN_RE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[^:]*):(?P<account>[^:]*):"
                     r"(?P<resource>.+)$")
_SECRET_RE = re.compile(r"arn:aws[a-z-]*:secretsmanager:[^:\s\"']*:[^:\s\"']*:secret:[^\s\"']+")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
# What worker.config expands from the environment: such text in a copied value would be read as a variable.
_ENV_SYNTAX_RE = re.compile(r"\$\{[A-Za-z_]")


class EsfImportError(Exception):
    """The input cannot be read as an ESF config at all (exit code 2); anything less is a note."""


@dataclass(frozen=True)
class Note:
    where: str
    """`inputs[2] (s3-sqs queue my-queue)`, a section (`opensearch`), or an unknown top-level key."""
    text: str
    source: str | None = None
    """The Sluice source the note is about, so it is also written as a comment above that source."""

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


@dataclass
class ImportResult:
    """A converted config with everything the user still has to do."""

    config: dict[str, Any]
    notes: list[Note] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)
    """Environment variable -> what it must hold; the config does not start without them."""
    inputs: int = 0

    def placeholder_env(self) -> dict[str, str]:
        """Stand-in values, to check that the config is valid once the variables are set."""
        return {name: f"<{name}>" for name in self.placeholders}

    def to_yaml(self, origin: str = "an Elastic Serverless Forwarder config") -> str:
        """The config as YAML, with the variables to set and the notes as comments next to what they concern."""
        lines = [f"# Sluice configuration converted by `sluice import-esf` from {origin}.",
                 "# Review the notes below (also printed on stderr) and docs/migrating.md before `sluice run`."]
        if self.placeholders:
            lines.append("# Environment variables this file reads (the worker does not start until they are set):")
            for name, meaning in self.placeholders.items():
                lines += _comment(f"{name}: {meaning}", "#   ", "#     ")
        general = [n for n in self.notes if n.source is None]
        if general:
            lines.append("# Notes:")
            for note in general:
                lines += _comment(str(note), "#   - ", "#     ")
        out = "\n".join(lines) + "\n"
        for key, value in self.config.items():
            if key != "sources":
                out += _dump({key: value})
        out += "sources:\n"
        for name, body in self.config.get("sources", {}).items():
            for note in (n for n in self.notes if n.source == name):
                out += "\n".join(_comment(str(note), "  # ", "  #   ")) + "\n"
            out += textwrap.indent(_dump({name: body}), "  ")
        return out

    def report(self) -> str:
        """What did not map and what is left to do, for stderr."""
        sources = len(self.config.get("sources", {}))
        lines = [f"sluice import-esf: {self.inputs} ESF input(s) -> {sources} Sluice source(s); "
                 f"{len(self.notes)} note(s)."]
        if self.notes:
            lines.append("Not mapped as is, and why:")
            for note in self.notes:
                lines += _comment(str(note), "  - ", "    ")
        if self.placeholders:
            lines.append("Set these environment variables for the worker (docs/migrating.md shows how to pass "
                         "Secrets Manager values):")
            width = max(len(n) for n in self.placeholders)
            for name, meaning in self.placeholders.items():
                lines += _comment(f"{name.ljust(width)}  {meaning}", "  ", "  " + " " * (width + 2))
        return "\n".join(lines) + "\n"


def _comment(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, 116, initial_indent=first, subsequent_indent=rest, break_long_words=False,
                         break_on_hyphens=False) or [first.rstrip()]


def _dump(value: dict[str, Any]) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1 << 16)


@dataclass(frozen=True)
class _Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @property
    def domain(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"


def _parse_arn(text: Any) -> _Arn | None:
    m = _ARN_RE.match(text) if isinstance(text, str) else None
    return _Arn(**m.groupdict()) if m else None


@dataclass
class _Input:
    index: int
    type: str
    id: str
    arn: _Arn
    raw: dict[str, Any]
    where: str
    es_outputs: list[dict[str, Any]]


def _destination(args: dict[str, Any]) -> str:
    """How ESF itself tells outputs apart: the URL, else the Cloud ID."""
    return str(args.get("elasticsearch_url") or args.get("cloud_id") or "")


def _connection(args: dict[str, Any]) -> dict[str, Any]:
    """The output settings Sluice can hold only once (one `opensearch` section), with ESF's defaults filled in
    and the credentials Sluice would use (username/password, else the API key)."""
    user = args.get("username")
    return {
        "credentials": (user, args.get("password")) if user else args.get("api_key"),
        "batch_max_actions": args.get("batch_max_actions", 500),
        "batch_max_bytes": args.get("batch_max_bytes", 10 << 20),
        "ssl_assert_fingerprint": args.get("ssl_assert_fingerprint") or "",
    }


def _shown(destination: str) -> str:
    """A destination as it may be printed: a Cloud ID is not a secret but is long and unreadable."""
    if not destination:
        return "(none)"
    if destination.startswith(("http://", "https://")):
        return _without_userinfo(destination)[0]
    if destination.startswith("arn:"):
        return destination
    return "the cloud_id deployment"


def _without_userinfo(url: str) -> tuple[str, bool]:
    """The URL without `user:password@`, and whether it had one (a secret must not reach the output)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, False
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])), True


def _aws_service(url: str) -> tuple[str, str] | None:
    """(`es` | `aoss`, region) for an Amazon OpenSearch Service domain or Serverless collection endpoint."""
    m = re.match(r"^(?:https?://)?[^/:]+\.([a-z0-9-]+)\.(es|aoss)\.amazonaws\.com(?:\.cn)?(?::\d+)?(?:/.*)?$", url)
    return (m.group(2), m.group(1)) if m else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "_", text.lower()).strip("_-") or "source"


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Converter:
    def __init__(self, *, keep_index_names: bool) -> None:
        self.keep_index_names = keep_index_names
        self.notes: list[Note] = []
        self.placeholders: dict[str, str] = {}
        self._secret_vars: dict[str, str] = {}
        self.sources: dict[str, dict[str, Any]] = {}
        self.region = "us-east-1"

    # -- notes and placeholders -------------------------------------------------------------------------------

    def note(self, where: str, text: str, source: str | None = None) -> None:
        self.notes.append(Note(where, text, source))

    def _variable(self, base: str, meaning: str) -> str:
        """A new `${VAR}`; a second, different use of the same base name gets a numbered one."""
        name, n = base, 2
        while name in self.placeholders and self.placeholders[name] != meaning:
            name, n = f"{base}_{n}", n + 1
        self.placeholders[name] = meaning
        return "${" + name + "}"

    def _secret_ref(self, arn: str, base: str) -> str:
        if arn not in self._secret_vars:
            parts = arn.split(":")
            what = f"Secrets Manager secret {arn}"
            if len(parts) == 8:
                what += f" (key `{parts[7]}` of the JSON secret `{parts[6]}`)"
            self._secret_vars[arn] = self._variable(base, what)
        return self._secret_vars[arn]

    def plain(self, value: str, base: str) -> str:
        """A value that may be copied, unless ESF read (part of) it from Secrets Manager."""
        return _SECRET_RE.sub(lambda m: self._secret_ref(m.group(0), base), value)

    def secret(self, value: Any, base: str, key: str) -> str:
        """A value that is never copied: a Secrets Manager ARN or a literal both become a variable."""
        text = str(value)
        if _SECRET_RE.fullmatch(text):
            return self._secret_ref(text, base)
        return self._variable(base, f"the `{key}` the ESF config held in clear (not copied into this file)")

    # -- the whole file -----------------------------------------------------------------------------------------

    def convert(self, esf: Any) -> ImportResult:
        if not isinstance(esf, dict):
            raise EsfImportError("not an ESF config: the top level is not a mapping")
        raw_inputs = esf.get("inputs")
        if not isinstance(raw_inputs, list) or not raw_inputs:
            raise EsfImportError("not an ESF config: no `inputs` list")
        for key in esf:
            if key != "inputs":
                self.note(str(key), "unknown top-level key, ignored (ESF reads only `inputs`)")
        inputs = [inp for i, raw in enumerate(raw_inputs) if (inp := self._read_input(i, raw)) is not None]
        if not inputs:
            raise EsfImportError("no input could be converted:\n" + "\n".join(f"  {n}" for n in self.notes))
        regions = Counter(inp.arn.region for inp in inputs if _REGION_RE.match(inp.arn.region))
        if regions:
            self.region = regions.most_common(1)[0][0]
        primary = next((args for inp in inputs for args in inp.es_outputs), None)
        opensearch = self._opensearch(primary)
        cloudwatch: dict[str, list[tuple[_Input, dict[str, Any], str | None, str | None]]] = {}
        for inp in inputs:
            args = self._pick_output(inp, primary)
            processing = self._processing(inp)
            index, log_type = self._index(inp, args)
            if inp.type == "cloudwatch-logs":
                key = json.dumps([processing, index, inp.arn.region], sort_keys=True)
                cloudwatch.setdefault(key, []).append((inp, processing, index, log_type))
            else:
                self._simple_source(inp, processing, index, log_type)
        for n, members in enumerate(cloudwatch.values(), 1):
            self._cloudwatch_source(members, n if len(cloudwatch) > 1 else None)
        carried = sorted({body["index"] for body in self.sources.values() if "index" in body})
        if carried:
            self.note("sources.*.index", f"es_datastream_name carried over as the sources' `index` "
                      f"({', '.join(carried)}): one index each, with no date in its name, and none of Sluice's "
                      "index templates (those match `opensearch.index`); on OpenSearch it is a plain index unless "
                      "a data stream template matches it. `--sluice-index-names` leaves them out, so documents go "
                      "to Sluice's per-log-type daily indices")
        config: dict[str, Any] = {
            "aws": {"region": self.region},
            "opensearch": opensearch,
            "dead_letters": {
                "bucket": self._variable("SLUICE_BACKUP_BUCKET", "S3 bucket Sluice writes records it cannot index "
                                         "to (required; ESF has no equivalent: it used its replay queue)"),
                "replay_queue_url": self._variable("SLUICE_REPLAY_QUEUE_URL", "URL of an SQS queue for "
                                                   "`sluice replay` pointer messages (required; not ESF's replay "
                                                   "queue, whose messages Sluice cannot read)"),
            },
            "sources": self.sources,
        }
        return ImportResult(config, self.notes, self.placeholders, len(raw_inputs))

    def _read_input(self, i: int, raw: Any) -> _Input | None:
        where = f"inputs[{i}]"
        if not isinstance(raw, dict):
            self.note(where, "not a mapping, skipped")
            return None
        kind, ident = raw.get("type"), raw.get("id")
        where = f"inputs[{i}] ({kind} {ident})"
        if kind not in ESF_INPUT_TYPES:
            self.note(where, f"input type {kind!r} is not one of {', '.join(ESF_INPUT_TYPES)}: skipped")
            return None
        arn = _parse_arn(ident)
        expected = {"s3-sqs": "sqs", "sqs": "sqs", "kinesis-data-stream": "kinesis", "cloudwatch-logs": "logs"}[kind]
        if arn is None or arn.service != expected:
            self.note(where, f"`id` must be the ARN of the {expected} resource: skipped")
            return None
        resource = {"s3-sqs": "queue", "sqs": "queue", "kinesis-data-stream": "stream"}.get(kind, "log group")
        where = f"inputs[{i}] ({kind} {resource} {self._resource_name(kind, arn)})"
        if not _REGION_RE.match(arn.region) or not re.fullmatch(r"\d{12}", arn.account):
            self.note(where, f"the ARN's region {arn.region!r} or account {arn.account!r} looks like a template "
                      "placeholder; the values are copied as they are")
        for key in raw:
            if key not in _INPUT_KEYS:
                self.note(where, f"unknown key `{key}` ignored (ESF ignores it too)")
        es_outputs: list[dict[str, Any]] = []
        outputs = raw.get("outputs")
        if not isinstance(outputs, list):
            self.note(where, "no `outputs` list (ESF rejects such an input); converted without an output")
            outputs = []
        for out in outputs:
            kind_out = out.get("type") if isinstance(out, dict) else None
            args = out.get("args") if isinstance(out, dict) else None
            if kind_out == "elasticsearch" and isinstance(args, dict):
                es_outputs.append(args)
                for key in args:
                    if key not in _ES_KEYS:
                        self.note(where, f"elasticsearch output: unknown argument `{key}` ignored")
            elif kind_out == "logstash":
                self.note(where, "logstash output dropped: Sluice writes only to OpenSearch")
            else:
                self.note(where, f"output {kind_out!r} without `args` or of an unknown type: dropped")
        return _Input(i, kind, str(ident), arn, raw, where, es_outputs)

    @staticmethod
    def _resource_name(kind: str, arn: _Arn) -> str:
        if kind == "kinesis-data-stream":
            return arn.resource.split("/", 1)[-1]
        if kind == "cloudwatch-logs":
            return _log_group(arn)[0]
        return arn.resource

    # -- the output -------------------------------------------------------------------------------------------

    def _opensearch(self, args: dict[str, Any] | None) -> dict[str, Any]:
        where = "opensearch"
        if args is None:
            self.note(where, "no input has an elasticsearch output: set the cluster URL and `opensearch.auth`")
            return {"hosts": [self._variable("SLUICE_OPENSEARCH_URL", "URL of the OpenSearch cluster")]}
        url, cloud_id = args.get("elasticsearch_url"), args.get("cloud_id")
        if isinstance(url, str) and url:
            if _SECRET_RE.search(url):
                host = self.plain(url, "SLUICE_OPENSEARCH_URL")
            else:
                host, had_credentials = _without_userinfo(url)
                if had_credentials:
                    self.note(where, "credentials in `elasticsearch_url` not copied: set `opensearch.auth`")
            if cloud_id:
                self.note(where, "`cloud_id` ignored: `elasticsearch_url` is set and wins (as in ESF)")
        else:
            host = self._variable("SLUICE_OPENSEARCH_URL", "URL of the OpenSearch cluster, e.g. https://search-"
                                  "logs-abc.eu-west-1.es.amazonaws.com:443")
            self.note(where, "`cloud_id` cannot be mapped: it names an Elastic Cloud deployment, and Sluice needs "
                      "the URL of an OpenSearch cluster" if cloud_id else "the output has no `elasticsearch_url`")
        out: dict[str, Any] = {"hosts": [host]}
        aws = _aws_service(host)
        auth: dict[str, Any] = {"type": "none"}
        user, password, api_key = args.get("username"), args.get("password"), args.get("api_key")
        if user:
            if password is None or password == "":
                self.note(where, "`username` without `password` (ESF rejects that): set the password")
                secret = self._variable("SLUICE_OPENSEARCH_PASSWORD", "the password of the OpenSearch user")
            else:
                secret = self.secret(password, "SLUICE_OPENSEARCH_PASSWORD", "password")
            auth = {"type": "basic", "username": self.plain(str(user), "SLUICE_OPENSEARCH_USERNAME"),
                    "password": secret}
            if api_key:
                self.note(where, "`api_key` dropped: Sluice has no API-key authentication, so it uses `username`/"
                          "`password` (ESF used the API key when both were set)")
        elif api_key:
            if aws:
                auth = {"type": "sigv4", "service": aws[0]}
                self.note(where, "`api_key` cannot be mapped (Sluice has no API-key authentication); the cluster "
                          "is an Amazon OpenSearch endpoint, so requests are signed with the worker's AWS role "
                          "(SigV4): give the role access to the domain or collection")
            else:
                auth = {"type": "basic",
                        "username": self._variable("SLUICE_OPENSEARCH_USERNAME", "an OpenSearch user for Sluice "
                                                   "(replaces the ESF API key)"),
                        "password": self._variable("SLUICE_OPENSEARCH_PASSWORD", "that user's password")}
                self.note(where, "`api_key` cannot be mapped: Sluice has no API-key authentication; basic auth "
                          "with a user you create on the OpenSearch cluster is used instead")
        elif aws:
            auth = {"type": "sigv4", "service": aws[0]}
        if auth["type"] == "sigv4" and aws and aws[1] != self.region:
            auth["region"] = aws[1]
        if auth["type"] != "none":
            out["auth"] = auth
        bulk: dict[str, Any] = {}
        actions, size = args.get("batch_max_actions"), args.get("batch_max_bytes")
        if actions is not None:
            if _is_int(actions) and actions >= 1:
                bulk["max_docs"] = actions
            else:
                self.note(where, f"batch_max_actions {actions!r} is not a positive integer: Sluice's default used")
        if size is not None:
            if _is_int(size) and size >= 1024:
                bulk["max_bytes"] = size
            else:
                self.note(where, f"batch_max_bytes {size!r} is below Sluice's minimum (1024): its default used")
        if bulk:
            out["bulk"] = bulk
        if args.get("ssl_assert_fingerprint"):
            self.note(where, "`ssl_assert_fingerprint` cannot be mapped: Sluice verifies the certificate against a "
                      "CA bundle; save the cluster's CA (or self-signed) certificate and set `opensearch.ca_certs`")
        return out

    def _pick_output(self, inp: _Input, primary: dict[str, Any] | None) -> dict[str, Any] | None:
        """The elasticsearch output whose settings this input keeps; Sluice has exactly one cluster."""
        if not inp.es_outputs:
            if primary is not None:
                self.note(inp.where, "no elasticsearch output: its events go to the OpenSearch cluster of "
                          "`opensearch.hosts` like every other source's")
            return None
        assert primary is not None  # the first elasticsearch output of all is the primary one
        target = _destination(primary)
        chosen = next((a for a in inp.es_outputs if _destination(a) == target), inp.es_outputs[0])
        if _destination(chosen) != target:
            self.note(inp.where, f"its events now go to {_shown(target)} instead of "
                      f"{_shown(_destination(chosen))}: Sluice writes to one OpenSearch cluster")
        for other in inp.es_outputs:
            if other is not chosen:
                self.note(inp.where, f"second elasticsearch output (to {_shown(_destination(other))}) dropped: "
                          "Sluice writes each document once, to one cluster")
        if chosen is not primary:
            mine, first = _connection(chosen), _connection(primary)
            differing = [k for k in mine if mine[k] != first[k]]
            if differing:
                self.note(inp.where, f"output settings differ from the first input's ({', '.join(differing)}): "
                          "Sluice has one `opensearch` section, which uses the first input's")
        if chosen.get("es_dead_letter_index"):
            self.note(inp.where, "`es_dead_letter_index` cannot be mapped: Sluice keeps documents OpenSearch "
                      "rejects in the backup bucket (`dead_letters`); `sluice replay` re-indexes them")
        return chosen

    def _index(self, inp: _Input, args: dict[str, Any] | None) -> tuple[str | None, str | None]:
        """(the source's `index`, a log type the data stream name declares)."""
        name = args.get("es_datastream_name") if args else None
        if not isinstance(name, str) or not name:
            return None, None
        log_type = None
        if name.startswith("logs-"):
            log_type = _DATASET_LOG_TYPES.get(name[len("logs-"):].split("-", 1)[0])
        if not self.keep_index_names:
            return None, log_type
        if "{" in name or _ENV_SYNTAX_RE.search(name):
            self.note(inp.where, f"es_datastream_name {name!r} has characters Sluice reads as placeholders: "
                      "not carried over")
            return None, log_type
        return self.plain(name, "SLUICE_INDEX"), log_type

    # -- per-input processing -----------------------------------------------------------------------------------

    def _pattern(self, value: Any, where: str) -> str | None:
        """A regular expression as Sluice should read it, or None (reported) when there is none."""
        text = str(value)
        try:
            re.compile(text)
        except re.error as exc:
            halved = text.replace("\\\\", "\\")
            try:
                re.compile(halved)
            except re.error:
                self.note(where, f"pattern {text!r} is not a valid regular expression ({exc}; ESF rejects it too):"
                          " dropped")
                return None
            if halved == text:  # pragma: no cover - a pattern that failed cannot compile unchanged
                return None
            self.note(where, f"pattern {text!r} is not a valid regular expression ({exc}; ESF rejects it too); "
                      f"used {halved!r}, what the doubled backslashes of the ESF documentation mean: check it")
            text = halved
        # `${NAME` would be expanded from the environment; `{` followed by a letter is a literal brace in a
        # regular expression either way, so escaping it keeps the meaning.
        return re.sub(r"\$\{(?=[A-Za-z_])", r"$\\{", text)

    def _processing(self, inp: _Input) -> dict[str, Any]:
        raw, where = inp.raw, inp.where
        out: dict[str, Any] = {}
        for key in ("include", "exclude"):
            if key not in raw:
                continue
            if not isinstance(raw[key], list):
                self.note(where, f"`{key}` is not a list (ESF rejects it): not carried over")
                continue
            patterns = [p for v in raw[key] if (p := self._pattern(v, f"{where} {key}")) is not None]
            if patterns:
                out[key] = patterns
        if "multiline" in raw and (multiline := self._multiline(raw["multiline"], f"{where} multiline")):
            out["multiline"] = multiline
        content = raw.get("json_content_type")
        if content is not None:
            if content in ("ndjson", "single", "auto"):
                out["json_content_type"] = content
            elif content != "disabled":  # disabled is Sluice's default too
                self.note(where, f"json_content_type {content!r} is not ndjson, single or disabled: not carried over")
        field_name = raw.get("expand_event_list_from_field")
        if field_name is not None:
            if isinstance(field_name, str) and field_name:
                out["expand_event_list_from_field"] = field_name
            else:
                self.note(where, "expand_event_list_from_field is not a field name: not carried over")
        roots = raw.get("root_fields_to_add_to_expanded_event")
        if roots is not None:
            if roots == "all" or (isinstance(roots, list) and all(isinstance(r, str) for r in roots)):
                out["root_fields_to_add_to_expanded_event"] = roots
            else:
                self.note(where, "root_fields_to_add_to_expanded_event is neither `all` nor a list of names: not "
                          "carried over")
        if "expand_event_list_from_field" in out and "json_content_type" not in out:
            if content == "disabled":  # ESF splits lines, then expands each line that is JSON
                out["json_content_type"] = "ndjson"
                self.note(where, "json_content_type disabled with expand_event_list_from_field: each line is "
                          "decoded as JSON to expand it (json_content_type: ndjson)")
            else:  # ESF detects JSON content by default; Sluice is told to
                out["json_content_type"] = "auto"
        if "root_fields_to_add_to_expanded_event" in out and "expand_event_list_from_field" not in out:
            out.pop("root_fields_to_add_to_expanded_event")
            self.note(where, "root_fields_to_add_to_expanded_event without expand_event_list_from_field does "
                      "nothing: not carried over")
        tags = raw.get("tags")
        if tags is not None:
            if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
                kept = [t for t in tags if not _ENV_SYNTAX_RE.search(t)]
                if len(kept) != len(tags):
                    self.note(where, "tags containing `${` dropped: Sluice would read them as environment variables")
                if kept:
                    out["tags"] = kept
            else:
                self.note(where, "`tags` is not a list of strings (ESF rejects it): not carried over")
        return out

    def _multiline(self, raw: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.note(where, "not a mapping (ESF rejects it): not carried over")
            return None
        kind = raw.get("type")
        if kind not in ("pattern", "count", "while_pattern"):
            self.note(where, f"type {kind!r} is not pattern, count or while_pattern (ESF rejects it): not carried "
                      "over")
            return None
        for key in raw:
            if key not in _MULTILINE_KEYS:
                self.note(where, f"unknown key `{key}` ignored")
        out: dict[str, Any] = {"type": kind}
        if kind in ("pattern", "while_pattern"):
            pattern = self._pattern(raw.get("pattern", ""), where) if raw.get("pattern") else None
            if pattern is None:
                self.note(where, f"multiline {kind} without a usable pattern: not carried over")
                return None
            out["pattern"] = pattern
            if "negate" in raw:
                if isinstance(raw["negate"], bool):
                    out["negate"] = raw["negate"]
                else:
                    self.note(where, f"negate {raw['negate']!r} is not true/false: false used")
        if kind == "pattern":
            match = raw.get("match")
            if match in ("after", "before"):
                out["match"] = match
            else:
                self.note(where, f"match {match!r} is not after/before (ESF requires it): `after` used")
            if raw.get("flush_pattern"):
                self.note(where, "flush_pattern cannot be mapped: Sluice ends an event when the next one starts, "
                          "at max_lines/max_bytes, at the end of the object or message, or after `timeout`")
        if kind == "count":
            count = raw.get("count_lines")
            if not (_is_int(count) and count >= 1):
                self.note(where, f"count_lines {count!r} is not a positive integer: multiline not carried over")
                return None
            out["count_lines"] = count
        for key, minimum, default in (("max_lines", 1, "500"), ("max_bytes", 1024, "10485760")):
            value = raw.get(key)
            if value is None:
                continue
            if not _is_int(value) or value <= 0:
                self.note(where, f"{key} {value!r} (unlimited in ESF when 0 or less) is not supported: Sluice's "
                          f"default {default} used")
            elif value < minimum:
                out[key] = minimum
                self.note(where, f"{key} {value} is below Sluice's minimum: {minimum} used")
            else:
                out[key] = value
        if raw.get("skip_newline"):
            self.note(where, "skip_newline cannot be mapped: Sluice joins the lines of an event with a newline")
        timeout = raw.get("timeout")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
            out["timeout"] = timeout
        try:
            MultilineConfig.model_validate(out)
        except ValidationError as exc:  # pragma: no cover - every value above was checked against the schema
            self.note(where, f"not valid for Sluice ({exc.errors()[0]['msg']}): not carried over")
            return None
        return out

    # -- sources ----------------------------------------------------------------------------------------------

    def _name(self, base: str) -> str:
        slug = _slug(base)
        name, n = slug, 2
        while name in self.sources:
            name, n = f"{slug}_{n}", n + 1
        return name

    def _simple_source(self, inp: _Input, processing: dict[str, Any], index: str | None,
                       log_type: str | None) -> None:
        arn = inp.arn
        name = self._name(self._resource_name(inp.type, arn))
        body: dict[str, Any]
        if inp.type == "kinesis-data-stream":
            body = {"type": "kinesis", "stream": inp.id}
            if arn.region != self.region:
                body["region"] = arn.region
        else:
            queue_url = f"https://sqs.{arn.region}.{arn.domain}/{arn.account}/{arn.resource}"
            body = {"type": "sqs_s3" if inp.type == "s3-sqs" else "sqs", "queue_url": queue_url}
            if arn.region != self.region:
                self.note(inp.where, f"the queue is in {arn.region}, the worker's `aws.region` is {self.region}: "
                          "Sluice's SQS sources use `aws.region`, so run this source in a second worker whose "
                          f"config sets `aws.region: {arn.region}`", name)
        if log_type:
            body["log_type"] = log_type
            self.note(inp.where, f"log_type {log_type} inferred from es_datastream_name", name)
        elif inp.type != "sqs":
            # ESF indexes what it does not recognise as generic documents; Sluice would dead-letter it.
            body["fallback_log_type"] = "generic"
        if index:
            body["index"] = index
        if processing:
            body["processing"] = processing
        self.sources[name] = body

    def _cloudwatch_source(self, members: list[tuple[_Input, dict[str, Any], str | None, str | None]],
                           number: int | None) -> None:
        first, processing, index, _ = members[0]
        groups: dict[str, str] = {}
        for inp, _, _, declared in members:
            group, stream = _log_group(inp.arn)
            log_type = declared or _group_log_type(group)
            if groups.setdefault(group, log_type) != log_type:
                self.note(inp.where, f"log group {group} is already mapped to {groups[group]}: {log_type} ignored")
            if stream is not None:
                self.note(inp.where, f"the ESF input named log stream {stream} only; a subscription filter covers "
                          f"the whole log group, so Sluice receives every stream of {group}")
        names = list(groups)
        name = self._name("cloudwatch_" + names[0] if len(names) == 1 else "cloudwatch_logs")
        variable = "SLUICE_CLOUDWATCH_STREAM" + (f"_{number}" if number else "")
        region = first.arn.region
        stream = self._variable(variable, f"name or ARN of a Kinesis data stream in {region} that CloudWatch Logs "
                                f"subscription filters deliver log group(s) {', '.join(names)} to")
        self.note(f"sources.{name}", f"CloudWatch Logs log group(s) {', '.join(names)}: Sluice reads CloudWatch "
                  f"Logs from a Kinesis data stream, not through a Lambda trigger. Create the stream, set {variable}, "
                  "and put a subscription filter on each group with that stream as its destination (a group takes "
                  "two filters, so ESF's can stay until you switch over)", name)
        body: dict[str, Any] = {"type": "kinesis", "stream": stream}
        if region != self.region:
            body["region"] = region
        body["parser_options"] = {"log_groups": groups}
        if index:
            body["index"] = index
        if processing:
            body["processing"] = processing
        self.sources[name] = body


def _log_group(arn: _Arn) -> tuple[str, str | None]:
    """(log group, log stream or None) of `log-group:NAME[:*]` or `log-group:NAME:log-stream:STREAM`."""
    rest = arn.resource.removeprefix("log-group:")
    group, _, stream = rest.partition(":log-stream:")
    return group.removesuffix(":*"), (stream or None)


def _group_log_type(group: str) -> str:
    for regex, log_type in _GROUP_RULES:
        if regex.search(group):
            return log_type
    return "generic"


def convert(esf: Any, *, keep_index_names: bool = True) -> ImportResult:
    """Convert a loaded ESF config; raises EsfImportError when nothing usable is in it."""
    return _Converter(keep_index_names=keep_index_names).convert(esf)


def load_esf(path: str | Path) -> Any:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise EsfImportError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EsfImportError(f"{path}: invalid YAML: {exc}") from None


def run_import(path: str, output: str | None = None, *, keep_index_names: bool = True) -> int:
    """The command: YAML to stdout (or `output`), the report to stderr; 0 converted, 2 unreadable input."""
    try:
        result = convert(load_esf(path), keep_index_names=keep_index_names)
    except EsfImportError as exc:
        print(f"sluice import-esf: {exc}", file=sys.stderr)
        return 2
    try:  # a converter bug must not hand the user a config that `sluice run` would refuse
        parse_config(result.config, env=result.placeholder_env())
    except ConfigError as exc:
        print(f"sluice import-esf: internal error, the converted config is not valid:\n{exc}", file=sys.stderr)
        return 1
    text = result.to_yaml(Path(path).name)
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)
    sys.stderr.write(result.report())
    return 0
