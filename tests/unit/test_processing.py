"""Per-source processing: include/exclude, multiline, JSON events, expansion, tags and fields."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from worker.config import MultilineConfig, ProcessingConfig
from worker.processing import EventFilter, Multiline, Processor, expand_event_list, split_json


def frames_of(text: str) -> list[tuple[int, str]]:
    """Line frames as LineFramer makes them: byte offset of each non-blank line."""
    out = []
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            out.append((pos, line))
        pos += len(line.encode()) + 1
    return out


def ml(**kw: Any) -> Multiline:
    return Multiline(MultilineConfig(**kw))


def run(m: Multiline, frames: list[tuple[int, str]], per_call: int = 1) -> list[tuple[int, str]]:
    """Feed `per_call` frames at a time (state must carry across calls), then flush."""
    out: list[tuple[int, str]] = []
    for i in range(0, len(frames), per_call):
        out += m.feed(frames[i : i + per_call], now=float(i))
    return out + m.flush()


def joined_lines(events: list[tuple[int, str]]) -> list[str]:
    return [line for _, text in events for line in text.split("\n")]


# include / exclude


def test_filter_exclude_wins_over_include() -> None:
    f = EventFilter(include=["ERROR", "WARN"], exclude=["healthcheck"])
    assert f.keep("ERROR db down")
    assert f.keep("a WARN here")  # re.search, not match
    assert not f.keep("ERROR healthcheck failed")
    assert not f.keep("INFO all good")
    assert f.excluded == 2


def test_filter_without_include_keeps_all_but_excluded() -> None:
    f = EventFilter(include=[], exclude=[r"^DEBUG"])
    assert f.keep("INFO x")
    assert f.keep("x DEBUG")
    assert not f.keep("DEBUG x")
    assert f.excluded == 1
    assert f.active
    assert not EventFilter([], []).active


def test_filter_patterns_with_flags_and_groups_combine_safely() -> None:
    f = EventFilter(include=["(?i)error", r"(?x) warn \s+ \d+  # a comment", r"(ab)\1"], exclude=[])
    assert f.keep("an ERROR")
    assert f.keep("warn 42")
    assert f.keep("xxababyy")
    assert not f.keep("ab a b")
    # The same group name twice cannot compile as one alternation; each is then searched on its own.
    g = EventFilter(include=[r"(?P<x>foo)", r"(?P<x>bar)"], exclude=[r"(?P<y>baz)", r"(?P<y>qux)"])
    assert g.keep("bar")
    assert not g.keep("bar qux")
    assert not g.keep("nothing")


# multiline: pattern


JAVA = """\
2024-05-02 10:15:42 ERROR Request failed
java.lang.IllegalStateException: boom
    at com.example.Service.handle(Service.java:42)
    at com.example.Controller.run(Controller.java:17)
Caused by: java.io.IOException: disk full
    at com.example.Disk.write(Disk.java:9)
    ... 12 more
2024-05-02 10:15:43 INFO next request
2024-05-02 10:15:44 INFO another one
    at dangling.continuation(X.java:1)
"""


@pytest.mark.parametrize("per_call", [1, 2, 100])
def test_java_stack_trace_match_after(per_call: int) -> None:
    m = ml(pattern=r"^\s+at |^Caused by:|^\s+\.\.\. \d+ more|^[a-z]+\.[\w.]+(Exception|Error)", match="after")
    frames = frames_of(JAVA)
    events = run(m, frames, per_call)
    assert [offset for offset, _ in events] == [frames[0][0], frames[7][0], frames[8][0]]
    assert events[0][1] == "\n".join(line for _, line in frames[:7])
    assert events[1][1] == "2024-05-02 10:15:43 INFO next request"
    assert events[2][1].endswith("at dangling.continuation(X.java:1)")
    assert joined_lines(events) == [line for _, line in frames]
    assert m.splits == 0


def test_continuation_without_a_first_line_starts_an_event() -> None:
    m = ml(pattern=r"^\s", match="after")
    assert run(m, [(0, "  orphan"), (9, "  more"), (16, "head")]) == [(0, "  orphan\n  more"), (16, "head")]


RDS_SLOW = """\
# Time: 2024-05-02T10:15:42.123456Z
# User@Host: app[app] @  [10.0.0.5]  Id: 42
# Query_time: 3.000123  Lock_time: 0.000010 Rows_sent: 1  Rows_examined: 1000000
SET timestamp=1714644942;
SELECT *
  FROM orders
  WHERE note = 'naïve';
# Time: 2024-05-02T10:15:50.000001Z
# User@Host: app[app] @  [10.0.0.6]  Id: 43
# Query_time: 1.5  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 10
SET timestamp=1714644950;
UPDATE t SET a = 1;
"""


def test_rds_mysql_slow_query_negate_after() -> None:
    m = ml(pattern=r"^# Time:", negate=True, match="after")
    frames = frames_of(RDS_SLOW)
    events = run(m, frames, per_call=3)
    assert len(events) == 2
    assert events[0][0] == 0
    assert events[0][1].startswith("# Time: 2024-05-02T10:15:42") and events[0][1].endswith("'naïve';")
    second = RDS_SLOW.encode().index(b"# Time: 2024-05-02T10:15:50")  # a byte offset: the text is not ASCII
    assert events[1][0] == second
    assert events[1][1].count("\n") == 4
    assert joined_lines(events) == [line for _, line in frames]


def test_match_before_trailing_backslash() -> None:
    m = ml(pattern=r"\\$", match="before")
    frames = frames_of("SELECT a, \\\n  b, \\\n  c FROM t\nsingle line\nlast \\\nend\n")
    events = run(m, frames)
    assert events == [
        (frames[0][0], "SELECT a, \\\n  b, \\\n  c FROM t"),
        (frames[3][0], "single line"),
        (frames[4][0], "last \\\nend"),
    ]


def test_match_before_emits_as_soon_as_the_event_ends() -> None:
    m = ml(pattern=r"\\$", match="before")
    assert m.feed([(0, "a \\"), (4, "b")], now=0.0) == [(0, "a \\\nb")]
    assert not m.pending
    assert m.feed([(6, "c \\")], now=1.0) == []
    assert m.pending and m.pending_since == 1.0
    assert m.flush() == [(6, "c \\")]  # held continuation lines are never lost


def test_match_before_negate() -> None:
    # Lines NOT matching `;$` are held and joined to the next line that does.
    m = ml(pattern=r";$", negate=True, match="before")
    assert run(m, frames_of("SELECT 1\nFROM t;\nSELECT 2;\n")) == [(0, "SELECT 1\nFROM t;"), (17, "SELECT 2;")]


# multiline: count and while_pattern


def test_count_mode() -> None:
    m = ml(type="count", count_lines=3)
    frames = [(i * 10, f"l{i}") for i in range(8)]
    events = run(m, frames, per_call=2)
    assert events == [(0, "l0\nl1\nl2"), (30, "l3\nl4\nl5"), (60, "l6\nl7")]


def test_count_mode_split_by_max_lines_keeps_the_groups() -> None:
    m = ml(type="count", count_lines=3, max_lines=2)
    frames = [(i, f"l{i}") for i in range(6)]
    assert run(m, frames) == [(0, "l0\nl1"), (2, "l2"), (3, "l3\nl4"), (5, "l5")]
    assert m.splits == 2


def test_while_pattern() -> None:
    m = ml(type="while_pattern", pattern=r"^\s")
    frames = [(0, "a"), (2, " b"), (5, " c"), (8, "d"), (10, "e"), (12, " f")]
    assert run(m, frames, per_call=2) == [(0, "a"), (2, " b\n c"), (8, "d"), (10, "e"), (12, " f")]


def test_while_pattern_negate() -> None:
    m = ml(type="while_pattern", pattern=r"^---", negate=True)
    frames = [(0, "x"), (2, "y"), (4, "---"), (8, "z")]
    assert run(m, frames) == [(0, "x\ny"), (4, "---"), (8, "z")]


# multiline: limits and timeout


@pytest.mark.parametrize("per_call", [1, 7, 1000])
def test_max_lines_splits_without_losing_a_line(per_call: int) -> None:
    m = ml(pattern=r"^\s", match="after", max_lines=5)
    lines = ["head"] + [f"  at frame {i}" for i in range(12)] + ["next", "  at x"]
    frames = [(i * 100, line) for i, line in enumerate(lines)]
    events = run(m, frames, per_call)
    assert all(text.count("\n") < 5 for _, text in events)
    assert joined_lines(events) == lines
    assert [o for o, _ in events] == [0, 500, 1000, 1300]
    assert m.splits == 2
    assert len({o for o, _ in events}) == len(events)


def test_max_bytes_splits_and_a_huge_line_is_kept_whole() -> None:
    m = ml(pattern=r"^\s", match="after", max_bytes=1024)
    big = " " + "x" * 2000
    lines = ["head", " " + "a" * 600, " " + "b" * 600, big, " tail"]
    frames = [(i, line) for i, line in enumerate(lines)]
    events = run(m, frames)
    assert joined_lines(events) == lines
    assert [o for o, _ in events] == [0, 2, 3, 4]
    assert all(len(t.encode()) <= 1024 for _, t in events if t != big)
    assert m.splits == 3


def test_max_bytes_counts_utf8_bytes() -> None:
    m = ml(pattern=r"^\s", match="after", max_bytes=1024)
    lines = ["é" * 400, " " + "é" * 200]  # 800 + 401 bytes (+1 newline) > 1024, but only 601 characters
    events = run(m, [(0, lines[0]), (800, lines[1])])
    assert events == [(0, lines[0]), (800, lines[1])]
    assert m.splits == 1


def test_timeout_flush() -> None:
    m = ml(pattern=r"^\s", match="after", timeout=5.0)
    assert m.feed([(0, "first")], now=0.0) == []
    assert m.pending_since == 0.0
    assert not m.expired(4.9)
    assert m.expired(5.0)
    assert m.feed([(6, "  more")], now=3.0) == []  # a new line restarts the wait
    assert not m.expired(5.0)
    assert m.expired(8.0)
    assert m.flush() == [(0, "first\n  more")]
    assert m.pending_since is None and not m.expired(100.0)
    assert m.flush() == []


# JSON events


def test_ndjson_bad_line_is_a_failure_the_rest_go_on() -> None:
    text = '{"a":1}\n{"b":\n\n  {"c":"é"}\r\n[1,2]\n'
    events, failures = split_json(text, "ndjson", 1 << 20)
    data = text.encode()
    assert events == [(0, {"a": 1}), (data.index(b'{"c"'), {"c": "é"}), (data.index(b"[1,2]"), [1, 2])]
    assert len(failures) == 1
    offset, raw, reason = failures[0]
    assert (offset, raw) == (8, '{"b":') and reason.startswith("invalid JSON")


def test_single() -> None:
    text = '\n  {\n  "Records": [1, 2]\n}\n'
    assert split_json(text, "single", 1 << 20) == ([(3, {"Records": [1, 2]})], [])
    events, failures = split_json('{"a":1}{"b":2}', "single", 1 << 20)
    assert events == [] and failures[0][:2] == (0, '{"a":1}{"b":2}')
    assert split_json("  \n", "single", 1 << 20) == ([], [])


def test_auto_pretty_printed_and_concatenated_with_byte_offsets() -> None:
    docs = [{"msg": "héllo wörld ✓"}, {"b": [1, {"c": "ünï"}]}, {"d": "😀"}, {"e": 5}]
    text = (
        orjson.dumps(docs[0]).decode()
        + orjson.dumps(docs[1], option=orjson.OPT_INDENT_2).decode()
        + "\n"
        + orjson.dumps(docs[2]).decode()
        + orjson.dumps(docs[3]).decode()
        + "\n"
    )
    events, failures = split_json(text, "auto", 1 << 20)
    assert failures == []
    assert [v for _, v in events] == docs
    data = text.encode()
    first = len(orjson.dumps(docs[0]))
    second = first + len(orjson.dumps(docs[1], option=orjson.OPT_INDENT_2)) + 1
    third = second + len(orjson.dumps(docs[2]))
    assert [offset for offset, _ in events] == [0, first, second, third]
    for offset, value in events:  # each offset is where its document's bytes start
        assert json.JSONDecoder().raw_decode(data[offset:].decode())[0] == value


def test_auto_whole_document_and_ndjson_fast_paths() -> None:
    pretty = '{\n  "a": "ä",\n  "b": [1, 2]\n}\n'
    assert split_json(pretty, "auto", 1 << 20) == ([(0, {"a": "ä", "b": [1, 2]})], [])
    nd = '{"a":"ä"}\n  {"b":2}\n'
    assert split_json(nd, "auto", 1 << 20) == ([(0, {"a": "ä"}), (13, {"b": 2})], [])  # 'ä' is 2 bytes


def test_auto_resumes_after_invalid_json_at_the_next_document() -> None:
    text = '{"ok":1}\n{"broken": tru\n  "x": 1\n}\n{"ok":2}'
    events, failures = split_json(text, "auto", 1 << 20)
    assert events == [(0, {"ok": 1}), (text.index('{"ok":2}'), {"ok": 2})]
    assert len(failures) == 1
    offset, raw, _ = failures[0]
    assert offset == 9 and raw == '{"broken": tru\n  "x": 1\n}'


def test_auto_plain_text_falls_back_to_lines() -> None:
    text = "größe 1\r\n\n  \nline two\n"
    assert split_json(text, "auto", 1 << 20) == ([(0, "größe 1"), (len("größe 1\r\n\n  \n".encode()), "line two")], [])


def test_documents_over_max_bytes_are_failures_with_their_text() -> None:
    big = '{"x":"' + "a" * 2000 + '"}'
    for mode in ("ndjson", "single", "auto"):
        events, failures = split_json(big, mode, 1024)
        assert events == [] and failures[0][:2] == (0, big) and "exceeds max_bytes" in failures[0][2], mode
    events, failures = split_json('{"a":1}' + big, "auto", 1024)
    assert events == [(0, {"a": 1})] and failures[0][:2] == (7, big)


def test_unknown_mode() -> None:
    with pytest.raises(ValueError):
        split_json("{}", "xml", 100)


# expansion


EVENT = {"Records": [{"a": 1, "region": "own"}, {"b": 2}, "text"], "region": "eu-west-1", "account": "123"}


def test_expand_all_root_fields() -> None:
    items = expand_event_list(EVENT, "Records", "all")
    assert items == [
        {"a": 1, "region": "own", "account": "123"},  # the item's own values win
        {"b": 2, "region": "eu-west-1", "account": "123"},
        "text",
    ]
    assert EVENT["Records"][0] == {"a": 1, "region": "own"}  # the input is not modified


def test_expand_listed_root_fields_and_dotted_path() -> None:
    event = {"detail": {"items": [{"id": 1}, {"id": 2}], "kind": "x"}, "source": "aws.x", "time": "t"}
    items = expand_event_list(event, "detail.items", ["source", "missing"])
    assert items == [{"id": 1, "source": "aws.x"}, {"id": 2, "source": "aws.x"}]
    assert expand_event_list(event, "detail.items", []) == [{"id": 1}, {"id": 2}]
    everything = expand_event_list(event, "detail.items", "all")
    assert everything == [{"id": 1, "source": "aws.x", "time": "t"}, {"id": 2, "source": "aws.x", "time": "t"}]


def test_expand_not_expandable() -> None:
    assert expand_event_list({"Records": {"a": 1}}, "Records", "all") is None
    assert expand_event_list({"other": []}, "Records", "all") is None
    assert expand_event_list(["a"], "Records", "all") is None
    assert expand_event_list({"detail": "x"}, "detail.items", "all") is None
    assert expand_event_list({"Records": []}, "Records", "all") == []
    assert expand_event_list({"a.b": [1]}, "a.b", "all") == [1]  # a key spelled with a dot is found first


# Processor


def test_default_config_is_inactive() -> None:
    p = Processor(ProcessingConfig())
    assert not p.active and not p.handles_lines and not p.handles_json and not p.decorates
    frames = [(0, "a")]
    assert p.lines(frames, 0.0) is frames
    assert p.finish() == [] and not p.expired(1e9)


def test_processor_lines_multiline_then_filter() -> None:
    cfg = ProcessingConfig(
        multiline=MultilineConfig(pattern=r"^\s", match="after"), include=["ERROR"], exclude=["ignore me"]
    )
    p = Processor(cfg)
    assert p.active and p.handles_lines
    out = p.lines([(0, "ERROR one"), (10, "  detail"), (20, "INFO two"), (30, "ERROR ignore me")], now=0.0)
    # The include pattern is tested on the joined event: "  detail" is kept with its ERROR line.
    assert out == [(0, "ERROR one\n  detail")]
    assert p.lines([(40, "  more")], now=1.0) == []
    assert p.expired(1.0 + 5.0)
    assert p.flush() == []  # "ERROR ignore me\n  more" is excluded
    assert p.lines([(50, "ERROR tail")], now=2.0) == []
    assert p.finish() == [(50, "ERROR tail")]
    assert p.excluded == 2


def test_processor_multiline_splits_counter() -> None:
    p = Processor(ProcessingConfig(multiline=MultilineConfig(type="count", count_lines=4, max_lines=2)))
    assert p.lines([(i, str(i)) for i in range(4)], 0.0) == [(0, "0\n1"), (2, "2\n3")]
    assert p.multiline_splits == 1


def test_processor_json_expansion_offsets_and_subs() -> None:
    cfg = ProcessingConfig(
        json_content_type="auto",
        expand_event_list_from_field="Records",
        root_fields_to_add_to_expanded_event=["owner"],
        exclude=['"skip":true'],
    )
    p = Processor(cfg)
    text = '{"owner":"ö","Records":[{"i":0},{"i":1,"skip":true},{"i":2},[9]]}\n{"plain":1}\n{"Records":[]}'
    triples, failures = p.expanded_events(text, 1 << 20)
    assert failures == []
    second = len('{"owner":"ö","Records":[{"i":0},{"i":1,"skip":true},{"i":2},[9]]}\n'.encode())
    third = second + len('{"plain":1}\n')
    assert triples == [
        (0, "0", {"i": 0, "owner": "ö"}),
        (0, "2", {"i": 2, "owner": "ö"}),
        (0, "3", "[9]"),  # a non-object item becomes its JSON text, so parsers get str | dict
        (second, "", {"plain": 1}),
        (third, "", {"Records": []}),  # an empty list: the event is kept whole
    ]
    assert p.excluded == 1
    pairs, _ = p.events(text, 1 << 20)
    assert [o for o, _ in pairs] == [0, 2, 3, second, third]
    assert len({o for o, _ in pairs}) == len(pairs)


def test_processor_json_filter_on_compact_text_and_failures() -> None:
    p = Processor(ProcessingConfig(json_content_type="ndjson", include=['"level":"error"']))
    events, failures = p.events('{"level": "error"}\n{"level": "info"}\nnot json\n', 1 << 20)
    assert events == [(0, {"level": "error"})]
    assert failures[0][:2] == (37, "not json")
    assert p.excluded == 1


def test_processor_auto_plain_text_uses_multiline() -> None:
    cfg = ProcessingConfig(json_content_type="auto", multiline=MultilineConfig(pattern=r"^\s", match="after"))
    p = Processor(cfg)
    events, failures = p.events("boom\n  at x\nnext\n", 1 << 20)
    assert events == [(0, "boom\n  at x"), (12, "next")] and failures == []
    assert not p.multiline.pending  # type: ignore[union-attr]  # the lines() state is untouched


def test_processor_records_filter() -> None:
    p = Processor(ProcessingConfig(exclude=['"eventName":"Describe']))
    frames: list[tuple[int, Any]] = [(0, {"eventName": "DescribeInstances"}), (1, {"eventName": "RunInstances"})]
    assert p.records(frames) == [(1, {"eventName": "RunInstances"})]


def test_decorate_tags_and_dotted_fields() -> None:
    cfg = ProcessingConfig(
        tags=["prod", "payments", "prod"],
        fields={"service.name": "payments", "labels": {"team": "core", "tier.level": 1}, "env": "prod",
                "list": [1, 2]},
    )
    p = Processor(cfg)
    assert p.decorates and p.active
    body: dict[str, Any] = {"tags": ["payments", "x"], "service": {"name": "own", "id": 7}, "labels": {"team": "mine"}}
    p.decorate(body)
    assert body == {
        "tags": ["payments", "x", "prod"],
        "service": {"name": "own", "id": 7},
        "labels": {"team": "mine", "tier": {"level": 1}},
        "env": "prod",
        "list": [1, 2],
    }
    fresh: dict[str, Any] = {"tags": "single", "env": None, "service.name": "flat"}
    p.decorate(fresh)
    assert fresh["tags"] == ["single", "prod", "payments"]
    assert fresh["env"] is None  # present (even null): the document's own value wins
    assert "service" not in fresh  # the document has service.name under a dotted key
    empty: dict[str, Any] = {}
    p.decorate(empty)
    other: dict[str, Any] = {}
    p.decorate(other)
    assert empty["tags"] == ["prod", "payments"]
    assert empty["list"] is not other["list"]  # no mutable value is shared between documents
    assert empty["labels"] is not other["labels"]


def test_decorate_does_not_touch_a_scalar_in_the_way() -> None:
    p = Processor(ProcessingConfig(fields={"service.name": "x"}))
    body: dict[str, Any] = {"service": "plain"}
    p.decorate(body)
    assert body == {"service": "plain"}


@pytest.mark.parametrize(
    "kw",
    [
        {"pattern": r"^\s", "match": "after"},
        {"pattern": r"^\s", "negate": True, "match": "after"},
        {"pattern": r"\\$", "match": "before"},
        {"pattern": r"\\$", "negate": True, "match": "before"},
        {"type": "count", "count_lines": 3},
        {"type": "while_pattern", "pattern": r"^\s"},
        {"type": "while_pattern", "pattern": r"^\s", "negate": True},
    ],
)
def test_every_mode_keeps_every_line_whatever_the_chunking(kw: dict[str, Any]) -> None:
    rng = random.Random(7)
    pieces = ["head", "  cont", "tail \\", "x" * 300, "  " + "é" * 200]
    frames = [(i * 1000, rng.choice(pieces)) for i in range(400)]
    results = []
    for per_call in (1, 3, 50, 400):
        m = ml(max_lines=4, max_bytes=1024, **kw)
        events = run(m, frames, per_call)
        assert joined_lines(events) == [line for _, line in frames]
        assert len({o for o, _ in events}) == len(events)
        assert all(text.count("\n") < 4 for _, text in events)
        results.append((events, m.splits))
    assert all(r == results[0] for r in results)
