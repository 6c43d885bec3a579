"""Index lifecycle: how indices are named and cut (daily, rollover alias, data stream) and the ISM policies that
age and delete them.

Everything here is pure (no client): the config model, the name arithmetic shared by the sink and `sluice
setup`, and the ISM policy bodies. Installing them is `worker/setup.py`'s job.

`worker/config.py` imports `LifecycleConfig` from here and this module subclasses `worker.config._Model`, so
the two import each other: `worker.config` must be imported first (every module that imports this one does
so, and sorted imports put `worker.config` before `worker.sinks.*` anyway). Nothing else here may import a
module that imports `worker.config` at module level.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from worker.config_model import ConfigModel as _Model
from worker.parsers import log_types

if TYPE_CHECKING:
    from worker.config import OpenSearchConfig

Mode = Literal["daily", "rollover", "data_stream"]

DATE_TOKENS = ("{yyyy}", "{MM}", "{dd}")
ISM_PRIORITY = 150
"""Priority of our `ism_template`s. ISM refuses two policies whose templates overlap at the same priority; 100
is what most examples (and so most hand-made policies) use, so we stay off it."""
ROLLOVER_ALIAS_SETTING = "plugins.index_state_management.rollover_alias"
FIRST_GENERATION = "000001"
"""ISM's rollover wants index names ending in `-<digits>`; rollover increments the number."""

KNOWN_ACTIONS = frozenset({
    "rollover", "delete", "force_merge", "replica_count", "read_only", "read_write", "allocation",
    "index_priority", "close", "open", "shrink", "snapshot", "notification", "rollup",
})
"""Action names ISM documents; a policy using any other is refused by the cluster."""

_SIZE_RE = re.compile(r"^[1-9][0-9]*(b|kb|mb|gb|tb|pb)$")
_AGE_RE = re.compile(r"^[1-9][0-9]*(d|h|m|s)$")


class LifecycleConfig(_Model):
    """How indices are cut and how long they live (ISM, Index State Management)."""

    mode: Mode = "daily"
    """`daily`: one index per log type per day of the event's own `@timestamp` (the `opensearch.index` pattern);
    a redelivered document lands in the same index again, so `create` with its deterministic id is a 409,
    never a duplicate, however late the redelivery. `rollover`: one write alias per log type (the index
    pattern without its date placeholders, e.g. `sluice-cloudtrail`), backed by `<alias>-000001`, `-000002`...
    that ISM rolls over by size and age; `data_stream`: the same name is a data stream instead (a document
    without `@timestamp` is refused and dead-lettered). In both, duplicate suppression only holds within the
    current backing index: a document redelivered after a rollover is written again into the new index (a
    duplicate). Use them for even shard sizes at high volume; keep `daily` when exactly-once matters more."""
    ism: bool = True
    """Install one ISM policy per log type (`sluice-<log_type>`) that applies itself to new indices. Off: no
    policy is installed or changed (existing ones are left alone). Clusters without ISM are detected and
    skipped with a message; in `rollover`/`data_stream` mode nothing then rolls over."""
    delete_after_days: int = Field(30, ge=1)
    """Days after an index's creation before ISM deletes it. Age counts from creation, not from the data: a
    daily index written by a backfill of old logs lives this long from the backfill; a rollover backing index
    holds data up to `rollover_max_age` younger than itself."""
    retention: dict[str, int] = {}
    """Per log type days before deletion, overriding `delete_after_days` (e.g. `cloudtrail: 365`). Phases
    (`warm`, `cold`, `force_merge`) not earlier than a type's retention are left out of its policy."""
    warm_after_days: int | None = Field(None, ge=1)
    """Days after creation before an index turns warm: made read-only, and moved to nodes with
    `warm_node_attributes` if given. In `daily` mode a document that arrives later for that day (a late or
    replayed log) is then refused (403) and dead-lettered: set it well past your latest expected delivery."""
    cold_after_days: int | None = Field(None, ge=1)
    """Days after creation before an index turns cold: read-only and no replicas (one copy left: the S3
    originals remain for a backfill), on nodes with `cold_node_attributes` if given."""
    force_merge_after_days: int | None = Field(None, ge=1)
    """Days after creation before an index is force-merged to one segment per shard (smaller, faster to
    search; ISM makes it read-only first, with the same caveat as `warm_after_days`)."""
    warm_node_attributes: dict[str, str] = {}
    """Node attributes a warm index must move to (ISM `allocation` `require`, e.g. `temp: warm`); empty: it
    stays where it is. Only set attributes your nodes have, or its shards cannot be placed."""
    cold_node_attributes: dict[str, str] = {}
    """Node attributes a cold index must move to (like `warm_node_attributes`)."""
    rollover_max_size: str = "30gb"
    """`rollover`/`data_stream`: roll over once the primary shards of the write index hold this much in total
    (ISM `min_size`; units b, kb, mb, gb, tb, pb)."""
    rollover_max_age: str = "1d"
    """`rollover`/`data_stream`: roll over once the write index is this old (ISM `min_index_age`; units d, h,
    m, s), whichever comes first."""

    @field_validator("retention")
    @classmethod
    def _known_types(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(v) - set(log_types()))
        if unknown:
            raise ValueError(f"unknown log type(s) {unknown}; one of {', '.join(log_types())}")
        bad = sorted(k for k, days in v.items() if days < 1)
        if bad:
            raise ValueError(f"retention must be at least 1 day: {bad}")
        return v

    @field_validator("rollover_max_size")
    @classmethod
    def _size(cls, v: str) -> str:
        v = v.strip().lower()
        if not _SIZE_RE.match(v):
            raise ValueError(f"{v!r} is not a size like 30gb (units b, kb, mb, gb, tb, pb)")
        return v

    @field_validator("rollover_max_age")
    @classmethod
    def _age(cls, v: str) -> str:
        v = v.strip()
        if not _AGE_RE.match(v):
            raise ValueError(f"{v!r} is not an age like 1d or 12h (units d, h, m, s)")
        return v

    @model_validator(mode="after")
    def _phases_in_order(self) -> LifecycleConfig:
        for name in ("warm_after_days", "cold_after_days", "force_merge_after_days"):
            days = getattr(self, name)
            if days is not None and days >= self.delete_after_days:
                raise ValueError(f"{name} ({days}) must be less than delete_after_days ({self.delete_after_days})")
        if self.warm_after_days is not None and self.cold_after_days is not None \
                and self.cold_after_days <= self.warm_after_days:
            raise ValueError(f"cold_after_days ({self.cold_after_days}) must be more than "
                             f"warm_after_days ({self.warm_after_days})")
        return self


def lifecycle_of(cfg: OpenSearchConfig) -> LifecycleConfig:
    """`opensearch.lifecycle`, or the defaults (today's daily indices) while the config has no such key."""
    value = getattr(cfg, "lifecycle", None)
    return value if isinstance(value, LifecycleConfig) else LifecycleConfig()


# --- names -------------------------------------------------------------------------------------------------

_DATE_RUN = re.compile(r"[-._]*(?:\{(?:yyyy|MM|dd)\}[-._]*)+")


def write_pattern(pattern: str) -> str:
    """The index name pattern without its date placeholders and the separators around them: the write alias or
    data stream name (still with `{log_type}`). `sluice-{log_type}-{yyyy}.{MM}.{dd}` -> `sluice-{log_type}`;
    `{yyyy}.{MM}-logs-{log_type}` -> `logs-{log_type}`; a date in the middle leaves one `-`."""
    out = _DATE_RUN.sub("\x00", pattern).strip("\x00").replace("\x00", "-")
    return out


def write_name(pattern: str, log_type: str) -> str:
    """The write alias / data stream of one log type under a name pattern."""
    return write_pattern(pattern).replace("{log_type}", log_type)


def index_pattern(pattern: str, log_type: str, mode: Mode) -> str:
    """What an index template (and an ISM template) must match for one log type: every daily index, every
    backing index `<alias>-NNNNNN` of a rollover alias, or exactly the data stream's name (a data stream
    template claims its patterns for data streams only, so it must not match anything else)."""
    if mode == "rollover":
        return f"{write_name(pattern, log_type)}-*"
    if mode == "data_stream":
        return write_name(pattern, log_type)
    out = pattern.replace("{log_type}", log_type)
    for token in DATE_TOKENS:
        out = out.replace(token, "*")
    while "**" in out:
        out = out.replace("**", "*")
    return out


def bootstrap_index(alias: str) -> str:
    """The first backing index of a rollover alias."""
    return f"{alias}-{FIRST_GENERATION}"


def pattern_problems(mode: Mode, patterns: dict[str, str]) -> list[str]:
    """Why these name patterns ({where: pattern}) cannot work in this mode (empty: they can). One alias or data
    stream per log type needs `{log_type}` in every pattern (daily indices share templates the same way, but
    a pattern without it has always been the user's choice there)."""
    if mode == "daily":
        return []
    return [f"{where}: {pattern!r} has no {{log_type}}; lifecycle mode {mode} needs one alias or data stream "
            "per log type" for where, pattern in patterns.items() if "{log_type}" not in pattern]


# --- ISM policies ------------------------------------------------------------------------------------------


def policy_id(log_type: str) -> str:
    return f"sluice-{log_type}"


def _days(n: int) -> str:
    return f"{n}d"


def _phases(lc: LifecycleConfig, delete_days: int) -> list[tuple[int, str, list[dict[str, Any]]]]:
    """(day, state name, actions) of the optional phases that come before deletion, in the order they run."""
    phases: list[tuple[int, int, str, list[dict[str, Any]]]] = []
    if lc.force_merge_after_days is not None:
        phases.append((lc.force_merge_after_days, 0, "force_merge", [{"force_merge": {"max_num_segments": 1}}]))
    if lc.warm_after_days is not None:
        warm: list[dict[str, Any]] = [{"read_only": {}}]
        if lc.warm_node_attributes:
            warm.append({"allocation": {"require": dict(lc.warm_node_attributes), "wait_for": False}})
        phases.append((lc.warm_after_days, 1, "warm", warm))
    if lc.cold_after_days is not None:
        cold: list[dict[str, Any]] = [{"read_only": {}}, {"replica_count": {"number_of_replicas": 0}}]
        if lc.cold_node_attributes:
            cold.append({"allocation": {"require": dict(lc.cold_node_attributes), "wait_for": False}})
        phases.append((lc.cold_after_days, 2, "cold", cold))
    phases.sort(key=lambda p: (p[0], p[1]))
    return [(day, name, actions) for day, _, name, actions in phases if day < delete_days]


def ism_policy(log_type: str, lc: LifecycleConfig, index_patterns: list[str]) -> dict[str, Any]:
    """The body of `PUT _plugins/_ism/policies/sluice-<log_type>`.

    States run in a line, each left by a `min_index_age` transition into the next: `hot` (in rollover and
    data stream modes it holds the rollover action, which must succeed before any transition is checked, so
    a write index is never aged out), then the configured phases by day, then `delete`. The description ends
    with a digest of the rest, so `sluice setup` can tell our own earlier versions from the current one."""
    delete_days = lc.retention.get(log_type, lc.delete_after_days)
    hot_actions: list[dict[str, Any]] = []
    if lc.mode != "daily":
        hot_actions.append({"rollover": {"min_size": lc.rollover_max_size, "min_index_age": lc.rollover_max_age}})
    chain: list[tuple[int, str, list[dict[str, Any]]]] = [(0, "hot", hot_actions)]
    chain += _phases(lc, delete_days)
    chain.append((delete_days, "delete", [{"delete": {}}]))
    states = []
    for i, (_, name, actions) in enumerate(chain):
        transitions = []
        if i + 1 < len(chain):
            next_day, next_name, _ = chain[i + 1]
            transitions.append({"state_name": next_name, "conditions": {"min_index_age": _days(next_day)}})
        states.append({"name": name, "actions": actions, "transitions": transitions})
    policy: dict[str, Any] = {
        "description": "",
        "default_state": "hot",
        "states": states,
        "ism_template": [{"index_patterns": list(index_patterns), "priority": ISM_PRIORITY}],
    }
    steps = " -> ".join(f"{name}@{day}d" if day else name for day, name, _ in chain)
    policy["description"] = (f"Sluice lifecycle of {log_type} logs ({lc.mode}): {steps} "
                             f"[sluice {digest({'policy': policy})}]")
    return {"policy": policy}


def policy_problems(body: dict[str, Any]) -> list[str]:
    """What the cluster would refuse (or silently mis-run) in a policy body: the documented shape checked here,
    so a unit test catches a broken policy before a cluster does."""
    out: list[str] = []
    policy = body.get("policy")
    if not isinstance(policy, dict):
        return ["no policy object"]
    if not policy.get("description"):
        out.append("description is required")
    states = policy.get("states")
    if not isinstance(states, list) or not states:
        return [*out, "states must be a non-empty list"]
    names = [s.get("name") for s in states]
    if len(set(names)) != len(names):
        out.append(f"duplicate state names {names}")
    if policy.get("default_state") not in names:
        out.append(f"default_state {policy.get('default_state')!r} is not a state")
    for state in states:
        for action in state.get("actions", []):
            kinds = [k for k in action if k not in ("timeout", "retry")]
            if len(kinds) != 1 or kinds[0] not in KNOWN_ACTIONS:
                out.append(f"state {state['name']}: unknown action {kinds}")
        for transition in state.get("transitions", []):
            if transition.get("state_name") not in names:
                out.append(f"state {state['name']}: transition to missing state {transition.get('state_name')!r}")
            age = (transition.get("conditions") or {}).get("min_index_age")
            if age is not None and not _AGE_RE.match(str(age)):
                out.append(f"state {state['name']}: min_index_age {age!r} is not a time value")
    templates = policy.get("ism_template")
    if templates is not None:
        for template in templates if isinstance(templates, list) else [templates]:
            if not template.get("index_patterns"):
                out.append("ism_template without index_patterns")
    return out


# --- comparing with what a cluster holds ------------------------------------------------------------------


def digest(body: Any) -> str:
    """A short, stable fingerprint of a JSON body (key order does not matter)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def covers(existing: Any, desired: Any) -> bool:
    """Whether `existing` holds everything `desired` says: dicts may carry more keys (defaults the cluster adds,
    e.g. ISM's per-action `retry`), lists must match item by item, scalars compare as strings (settings come
    back as strings: `"1"` for `1`, `"false"` for `False`)."""
    if isinstance(desired, dict):
        return isinstance(existing, dict) and all(k in existing and covers(existing[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(existing, list) and len(existing) == len(desired)
                and all(covers(e, d) for e, d in zip(existing, desired, strict=True)))
    if isinstance(desired, bool) or isinstance(existing, bool):
        return str(existing).lower() == str(desired).lower()
    return existing == desired or str(existing) == str(desired)
