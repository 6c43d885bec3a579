"""`sluice setup`: install what OpenSearch needs before the first document, and say what changed.

In order: index templates (one per log type and name pattern), ISM policies (one per log type; they only attach
to indices created after them, so they come before any index), then per lifecycle mode the first backing index
of each rollover alias, or each data stream. Every item is compared with what the cluster holds and reported
as `created`, `updated` or `unchanged`, so running it again (or at every worker start) changes nothing.

Clusters without ISM (osmem, some managed offerings) are detected and the policies skipped with a message.
The same function runs at worker start (`OpenSearchSink.setup`), where a failure raises so start-up retries.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

# worker.config first: it imports worker.sinks.lifecycle itself (see that module's docstring).
from worker.config import Config, OpenSearchConfig
from worker.sinks.lifecycle import (
    bootstrap_index,
    covers,
    lifecycle_of,
    pattern_problems,
)
from worker.sinks.templates import index_templates, ism_policies, targets

Outcome = Literal["created", "updated", "unchanged", "failed"]

ISM_UNSUPPORTED = "ISM not supported by this cluster: skipped"
DATA_STREAMS_UNSUPPORTED = "data streams not supported by this cluster"


class SetupError(Exception):
    """Something OpenSearch needs could not be installed."""


@dataclass(frozen=True)
class Item:
    kind: str
    """`index template`, `ISM policy`, `write alias` or `data stream`."""
    name: str
    outcome: Outcome
    detail: str = ""

    def line(self) -> str:
        return f"{self.kind} {self.name}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Report:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    ism: bool | None = None
    """Whether the cluster has ISM (None: not asked)."""


def source_indices(cfg: Config) -> dict[str, str]:
    """{source name: its own `index` pattern} for the sources that set one (what the sink and setup need)."""
    out: dict[str, str] = {}
    for name, source in cfg.sources.items():
        pattern = getattr(source, "index", None)
        if isinstance(pattern, str) and pattern:
            out[name] = pattern
    return out


# --- the create / update / unchanged decision (pure) -------------------------------------------------------


def _flat_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"index": {"number_of_shards": "1"}}` and `{"number_of_shards": 1}` alike as `{"number_of_shards": ...}`:
    the cluster answers with nested `index.*` keys and string values, whatever form it was given."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat_settings(value, path + "."))
        else:
            out[path.removeprefix("index.")] = value
    return out


def _normal_template(body: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(body)
    template = dict(out.get("template") or {})
    if "settings" in template:
        template["settings"] = _flat_settings(template["settings"])
    mappings = template.get("mappings")
    if isinstance(mappings, Mapping) and set(mappings) == {"_doc"}:
        template["mappings"] = mappings["_doc"]
    out["template"] = template
    return out


def template_outcome(existing: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> Outcome:
    """`existing` is the `index_template` object of `GET _index_template/<name>` (None: there is none).

    Unchanged when the cluster's template holds everything ours says, compared after the cluster's own
    rewriting (nested string settings, `data_stream` filled in with its timestamp field). Our `_meta.digest`
    is part of that, so a key we dropped since (which "holds everything" alone would not notice) is an update."""
    if existing is None:
        return "created"
    return "unchanged" if covers(_normal_template(existing), _normal_template(desired)) else "updated"


def policy_of(response: Mapping[str, Any]) -> dict[str, Any]:
    """The policy object of a `GET _plugins/_ism/policies/<id>` answer (also accepts the PUT answer's double
    `policy` nesting), with `ism_template` as a list (the cluster accepts an object, returns a list)."""
    policy = response.get("policy") or {}
    if isinstance(policy, Mapping) and "states" not in policy and isinstance(policy.get("policy"), Mapping):
        policy = policy["policy"]
    out = dict(policy)
    template = out.get("ism_template")
    if isinstance(template, Mapping):
        out["ism_template"] = [template]
    return out


def policy_outcome(existing: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> Outcome:
    """`existing` is the answer of `GET _plugins/_ism/policies/<id>` (None: 404). The cluster adds fields
    (`policy_id`, `last_updated_time`, `schema_version`, a `retry` per action, `last_updated_time` per ISM
    template), so unchanged means "holds everything ours says"; the description carries our digest."""
    if existing is None:
        return "created"
    return "unchanged" if covers(policy_of(existing), policy_of(desired)) else "updated"


# --- talking to the cluster --------------------------------------------------------------------------------


def _refusal(exc: TransportError) -> str:
    """The cluster's reason for refusing one item; a lost connection is not a refusal and goes on up."""
    if isinstance(exc, OSConnectionError):  # a TransportError too, in opensearch-py
        raise exc
    return _reason(exc)


def _status(exc: TransportError) -> int:
    return exc.status_code if isinstance(exc.status_code, int) else 0


def _reason(exc: TransportError) -> str:
    """`type: reason` of an OpenSearch error. With `AsyncHttpConnection` (the one connection class that takes
    a SigV4 signer) the body arrives undecoded in `exc.error` and `exc.info` is None, so both are tried."""
    for raw in (exc.info, exc.error):
        body: Any = raw
        if isinstance(raw, str | bytes):
            try:
                body = json.loads(raw)
            except ValueError:
                continue
        if isinstance(body, Mapping):
            error = body.get("error")
            if isinstance(error, Mapping):
                return f"{error.get('type', 'error')}: {error.get('reason', '')}"[:500]
            if error:
                return str(error)[:500]
    return f"HTTP {_status(exc)} {exc.error}"[:500]


async def ism_supported(client: Any) -> bool:
    """Whether the cluster has the ISM plugin: listing policies works on any cluster that has it (an empty list
    before the first policy); without it the route is unknown (400 "no handler found", or 404/405). Other
    errors (403: not allowed to read policies) raise."""
    resp = await client.transport.perform_request("GET", "/_plugins/_ism/policies", params={"size": "1"},
                                                  ignore=(400, 404, 405, 501))
    return isinstance(resp, Mapping) and "policies" in resp


async def _get(client: Any, path: str) -> Any:
    """GET that answers None for 404: "absent" is an expected answer here, not a failure worth a log line."""
    resp = await client.transport.perform_request("GET", path, ignore=(404,))
    if isinstance(resp, Mapping) and resp.get("status") == 404 and "error" in resp:
        return None
    return resp


async def _exists(client: Any, path: str) -> bool:
    return bool(await client.transport.perform_request("HEAD", path, ignore=(404,)))


async def _template(client: Any, name: str, body: dict[str, Any]) -> Item:
    resp = await _get(client, f"/_index_template/{name}")
    found = [t.get("index_template") for t in (resp or {}).get("index_templates", []) if t.get("name") == name]
    outcome = template_outcome(found[0] if found else None, body)
    if outcome != "unchanged":
        await client.transport.perform_request("PUT", f"/_index_template/{name}", body=body)
    return Item("index template", name, outcome, ", ".join(body["index_patterns"]))


async def _policy(client: Any, pid: str, body: dict[str, Any]) -> Item:
    path = f"/_plugins/_ism/policies/{pid}"
    existing = await _get(client, path)
    outcome = policy_outcome(existing, body)
    if outcome == "created":
        await client.transport.perform_request("PUT", path, body=body)
    elif outcome == "updated":
        # Optimistic concurrency, as ISM requires for updates: a policy changed meanwhile is a 409, not lost.
        params = {"if_seq_no": str(existing.get("_seq_no")), "if_primary_term": str(existing.get("_primary_term"))}
        await client.transport.perform_request("PUT", path, params=params, body=body)
    return Item("ISM policy", pid, outcome)


async def _write_alias(client: Any, alias: str) -> Item:
    """Rollover needs an alias whose write index ends in `-000001`; a plain index of the alias's name (from
    writes before setup ran) cannot be rolled over, and is reported instead of being touched."""
    first = bootstrap_index(alias)
    if await _exists(client, f"/_alias/{alias}"):
        return Item("write alias", alias, "unchanged")
    if await _exists(client, f"/{alias}"):
        raise SetupError(f"{alias} is an index, not an alias (written to before setup ran): reindex it into "
                         f"{first} or delete it, then run setup again")
    try:
        await client.transport.perform_request("PUT", f"/{first}",
                                               body={"aliases": {alias: {"is_write_index": True}}})
    except TransportError as exc:
        if "resource_already_exists" not in _reason(exc):
            raise
        if await _exists(client, f"/_alias/{alias}"):  # another worker bootstrapped it meanwhile
            return Item("write alias", alias, "unchanged")
        raise SetupError(f"{first} exists without the write alias {alias}: add the alias to the newest "
                         f"{alias}-NNNNNN index with is_write_index true") from exc
    return Item("write alias", alias, "created", first)


class _DataStreamsUnsupported(Exception):
    pass


async def _data_stream(client: Any, name: str) -> Item:
    path = f"/_data_stream/{name}"
    if await _get(client, path) is not None:
        return Item("data stream", name, "unchanged")
    try:
        await client.transport.perform_request("PUT", path)
    except TransportError as exc:
        reason = _reason(exc)
        if _status(exc) in (400, 405, 501) and ("unsupported" in reason or "no handler" in reason):
            raise _DataStreamsUnsupported(reason) from exc
        if "already_exists" in reason or "already exists" in reason:
            return Item("data stream", name, "unchanged")
        raise
    return Item("data stream", name, "created")


async def install(client: Any, cfg: OpenSearchConfig, sources: Mapping[str, str] | None = None,
                  echo: Callable[[str], None] | None = None) -> Report:
    """Install templates, policies and write targets; `echo` gets one line per item as it is done.

    Failures of single items are collected (the rest is still attempted); a lost connection raises."""
    report = Report()
    say = echo or (lambda _line: None)

    def done(item: Item) -> None:
        report.items.append(item)
        say(item.line())

    def failed(kind: str, name: str, why: str) -> None:
        report.items.append(Item(kind, name, "failed", why))
        report.failures.append(f"{kind} {name}: {why}")
        say(f"{kind} {name}: failed ({why})")

    lc = lifecycle_of(cfg)
    patterns = {"opensearch.index": cfg.index}
    patterns.update({f"sources.{name}.index": p for name, p in (sources or {}).items()})
    problems = pattern_problems(lc.mode, patterns)
    if problems:
        for problem in problems:
            report.failures.append(problem)
            say(problem)
        return report

    if lc.ism or lc.mode == "rollover":
        report.ism = await ism_supported(client)

    for name, body in index_templates(cfg, sources, rollover_alias=report.ism is not False).items():
        try:
            done(await _template(client, name, body))
        except TransportError as exc:
            failed("index template", name, _refusal(exc))

    if not lc.ism:
        report.notes.append("ISM policies: off (opensearch.lifecycle.ism is false)")
        say(report.notes[-1])
    elif report.ism is False:
        report.notes.append(ISM_UNSUPPORTED)
        say(ISM_UNSUPPORTED)
        if lc.mode != "daily":
            report.notes.append("without ISM nothing rolls over or is deleted: roll over and delete by hand")
            say(report.notes[-1])
    else:
        for pid, body in ism_policies(cfg, sources).items():
            try:
                done(await _policy(client, pid, body))
            except TransportError as exc:
                failed("ISM policy", pid, _refusal(exc))

    names = sorted({t.write_name for t in targets(cfg, sources) if t.write_name})
    if lc.mode == "rollover":
        for alias in names:
            try:
                done(await _write_alias(client, alias))
            except SetupError as exc:
                failed("write alias", alias, str(exc))
            except TransportError as exc:
                failed("write alias", alias, _refusal(exc))
    elif lc.mode == "data_stream":
        for stream in names:
            try:
                done(await _data_stream(client, stream))
            except _DataStreamsUnsupported as exc:
                report.failures.append(f"{DATA_STREAMS_UNSUPPORTED} ({exc}): lifecycle mode data_stream cannot "
                                       "work here; use daily or rollover")
                say(report.failures[-1])
                break
            except TransportError as exc:
                failed("data stream", stream, _refusal(exc))
    return report


async def setup(cfg: Config) -> int:
    """`sluice setup`: 0 when everything is installed or already was (ISM missing is not an error)."""
    from worker.sinks.opensearch import build_client

    client = build_client(cfg.opensearch, cfg.aws.region)
    try:
        report = await install(client, cfg.opensearch, source_indices(cfg), echo=print)
    except (OSConnectionError, ConnectionTimeout) as exc:
        print(f"cannot reach OpenSearch at {', '.join(cfg.opensearch.hosts)}: {exc}", file=sys.stderr)
        return 1
    except TransportError as exc:
        print(f"OpenSearch refused: {_reason(exc)}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    if report.failures:
        print(f"setup incomplete: {len(report.failures)} problem(s)", file=sys.stderr)
        return 1
    return 0
