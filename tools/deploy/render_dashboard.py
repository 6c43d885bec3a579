"""Draw the Grafana dashboard as a PNG from recorded metrics, without Grafana or Prometheus.

    .venv/bin/python tools/deploy/render_dashboard.py \
        [--dashboard deploy/helm/sluice/dashboards/sluice.json] \
        [--recording tools/deploy/metrics-recording.json] [--out docs/grafana-dashboard.png]

Why: the dashboard is only right if its queries, over what the worker really exports, draw something a person
can read. This reads the dashboard's panels (type, title, gridPos, unit, stacking) and their PromQL, evaluates
the PromQL over a recording made by tools/deploy/record_metrics.py (one sample per second per series), and lays
the panels out on Grafana's 24-column grid with matplotlib.

The PromQL evaluated is the subset the dashboard uses: selectors with = != =~ !~ matchers; rate, irate and
increase over a range; sum/max/min/avg/count with by/without; histogram_quantile; vector(); + - * / and
comparisons between vectors and scalars; `and`, `or`, `unless`. `parse_promql` is also how tools/deploy/lint.py
checks every expression of the dashboard. Grafana's `$__rate_interval` is taken as 10 s (4 scrape intervals of
the 1 s recording, plus 6), `$__range` as the whole recording, and every template variable as `.*` (All).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RATE_INTERVAL = 10.0

# -- PromQL: parsing -----------------------------------------------------------------------------------------


class PromQLError(ValueError):
    """An expression outside the supported subset, or malformed."""


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)
    window: str | None = None  # "10s", "$__rate_interval", ... for a range vector


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Agg:
    op: str
    expr: Any
    by: tuple[str, ...] | None
    without: tuple[str, ...] | None


@dataclass(frozen=True)
class BinOp:
    op: str
    lhs: Any
    rhs: Any
    bool_mod: bool = False


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?![\w$])
  | (?P<dur>\[\s*(?:\$\w+|\d+[smhdwy])\s*\])
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/(){},=<>])
  | (?P<ident>[a-zA-Z_:][\w:]*)
""", re.X)
_AGGS = {"sum", "max", "min", "avg", "count"}
_FUNCS = {"rate", "irate", "increase", "histogram_quantile", "vector", "abs", "clamp_min"}
_PRECEDENCE = [("or", "unless"), ("and",), ("==", "!=", ">=", "<=", ">", "<"), ("+", "-"), ("*", "/")]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PromQLError(f"unexpected {text[pos:pos + 10]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, m.group()))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("eof", "")

    def take(self, value: str | None = None) -> str:
        kind, tok = self.peek()
        if kind == "eof" or (value is not None and tok != value):
            raise PromQLError(f"expected {value or 'more'}, found {tok or 'the end'}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.binary(0)
        if self.peek()[0] != "eof":
            raise PromQLError(f"unexpected {self.peek()[1]!r}")
        return node

    def binary(self, level: int) -> Any:
        if level == len(_PRECEDENCE):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek()[1] in _PRECEDENCE[level]:
            op = self.take()
            bool_mod = False
            if self.peek()[1] == "bool":
                self.take()
                bool_mod = True
            node = BinOp(op, node, self.binary(level + 1), bool_mod)
        return node

    def labels(self) -> tuple[str, ...]:
        self.take("(")
        names = []
        while self.peek()[1] != ")":
            names.append(self.take())
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        return tuple(names)

    def unary(self) -> Any:
        kind, tok = self.peek()
        if kind == "num":
            self.take()
            return Num(float(tok))
        if tok == "-":
            self.take()
            return BinOp("*", Num(-1.0), self.unary())
        if tok == "(":
            self.take()
            node = self.binary(0)
            self.take(")")
            return node
        if kind != "ident":
            raise PromQLError(f"unexpected {tok!r}")
        self.take()
        if tok in _AGGS:
            by = without = None
            if self.peek()[1] in ("by", "without"):
                which = self.take()
                by, without = (self.labels(), None) if which == "by" else (None, self.labels())
            self.take("(")
            expr = self.binary(0)
            self.take(")")
            if self.peek()[1] in ("by", "without"):
                which = self.take()
                by, without = (self.labels(), None) if which == "by" else (None, self.labels())
            return Agg(tok, expr, by, without)
        if self.peek()[1] == "(" and tok in _FUNCS:
            self.take("(")
            args = []
            while self.peek()[1] != ")":
                args.append(self.binary(0))
                if self.peek()[1] == ",":
                    self.take()
            self.take(")")
            return self.check_call(Call(tok, tuple(args)))
        if self.peek()[1] == "(":
            raise PromQLError(f"function {tok} is not supported")
        matchers: list[tuple[str, str, str]] = []
        if self.peek()[1] == "{":
            self.take("{")
            while self.peek()[1] != "}":
                label = self.take()
                op = self.take()
                if op not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"bad matcher operator {op!r}")
                kind, value = self.peek()
                if kind != "str":
                    raise PromQLError(f"matcher {label}{op} needs a quoted value")
                self.take()
                matchers.append((label, op, value[1:-1].replace('\\"', '"').replace("\\\\", "\\")))
                if self.peek()[1] == ",":
                    self.take()
            self.take("}")
        window = None
        if self.peek()[0] == "dur":
            window = self.take().strip("[] ")
        return Selector(tok, tuple(matchers), window)

    @staticmethod
    def check_call(call: Call) -> Call:
        ranged = call.func in ("rate", "irate", "increase")
        if ranged and (len(call.args) != 1 or not isinstance(call.args[0], Selector) or not call.args[0].window):
            raise PromQLError(f"{call.func}() takes one range vector selector")
        if call.func == "histogram_quantile" and (len(call.args) != 2 or not isinstance(call.args[0], Num)):
            raise PromQLError("histogram_quantile(q, vector) needs a number for q")
        if call.func == "vector" and (len(call.args) != 1 or not isinstance(call.args[0], Num)):
            raise PromQLError("vector() takes one number")
        return call


def parse_promql(text: str) -> Any:
    """The expression's syntax tree; raises PromQLError outside the supported subset."""
    return _Parser(text).parse()


def metric_names(node: Any) -> set[str]:
    """Every metric name an expression selects (as written: `_total`, `_bucket` included)."""
    if isinstance(node, Selector):
        return {node.name}
    if isinstance(node, Call):
        return set().union(*(metric_names(a) for a in node.args)) if node.args else set()
    if isinstance(node, Agg):
        return metric_names(node.expr)
    if isinstance(node, BinOp):
        return metric_names(node.lhs) | metric_names(node.rhs)
    return set()


# -- PromQL: evaluation over a recording --------------------------------------------------------------------

Labels = tuple[tuple[str, str], ...]
Vector = dict[Labels, float]


class Recording:
    """Series of one recording, and the evaluation of an expression at each of its timestamps."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.started = datetime.fromisoformat(data["started"])
        self.times: list[float] = data["timestamps"]
        self.series: dict[str, list[tuple[Labels, list[float | None]]]] = {}
        for s in data["series"]:
            self.series.setdefault(s["name"], []).append((tuple(sorted(s["labels"].items())), s["values"]))

    def seconds(self, window: str) -> float:
        if window == "$__rate_interval":
            return RATE_INTERVAL
        if window == "$__range":
            return self.times[-1] - self.times[0] + 1
        if window.startswith("$"):
            raise PromQLError(f"unknown range variable {window}")
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[window[-1]]
        return float(window[:-1]) * unit

    def matching(self, sel: Selector) -> list[tuple[Labels, list[float | None]]]:
        out = []
        for labels, values in self.series.get(sel.name, []):
            d = dict(labels)
            if all(_match(d.get(label, ""), op, value) for label, op, value in sel.matchers):
                out.append((labels, values))
        return out

    def evaluate(self, expr: str, variables: dict[str, str] | None = None) -> list[Vector | float]:
        """The expression's value at every timestamp: a vector (labels -> value) or a scalar."""
        text = expr
        for name, value in (variables or {}).items():
            text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
        text = re.sub(r"\$(?!__)\w+", ".*", text)  # template variables not given: All
        node = parse_promql(text)
        return [self._eval(node, i) for i in range(len(self.times))]

    def _eval(self, node: Any, i: int) -> Vector | float:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Selector):
            if node.window:
                raise PromQLError("a range vector must be inside rate(), irate() or increase()")
            return {_drop_name(labels): v for labels, values in self.matching(node)
                    if (v := values[i]) is not None}
        if isinstance(node, Call):
            return self._call(node, i)
        if isinstance(node, Agg):
            return _aggregate(node, _vector(self._eval(node.expr, i)))
        if isinstance(node, BinOp):
            return _binop(node, self._eval(node.lhs, i), self._eval(node.rhs, i))
        raise PromQLError(f"cannot evaluate {node!r}")

    def _call(self, node: Call, i: int) -> Vector | float:
        if node.func == "vector":
            return {(): node.args[0].value}
        if node.func in ("abs", "clamp_min"):
            vec = _vector(self._eval(node.args[0], i))
            low = node.args[1].value if node.func == "clamp_min" else None
            return {k: (max(v, low) if low is not None else abs(v)) for k, v in vec.items()}
        if node.func == "histogram_quantile":
            return _histogram_quantile(node.args[0].value, _vector(self._eval(node.args[1], i)))
        sel: Selector = node.args[0]
        assert sel.window is not None
        window = self.seconds(sel.window)
        now = self.times[i]
        out: Vector = {}
        for labels, values in self.matching(sel):
            points = [(t, v) for t, v in zip(self.times[:i + 1], values[:i + 1], strict=True)
                      if v is not None and t > now - window]
            if len(points) < 2:
                continue
            if node.func == "irate":
                (t0, v0), (t1, v1) = points[-2], points[-1]
                out[_drop_name(labels)] = (v1 - v0 if v1 >= v0 else v1) / (t1 - t0)
                continue
            out[_drop_name(labels)] = _extrapolated(points, now - window, now, node.func == "rate")
        return out


def _extrapolated(points: list[tuple[float, float]], start: float, end: float, is_rate: bool) -> float:
    """increase() or rate() of a counter over (start, end] the way Prometheus computes it: the increase between
    the first and last sample (counter resets count from 0), extrapolated towards the window's edges by at most
    half a sample interval unless a sample is that close, never below zero at the start; rate divides by the
    window, not by the sampled span."""
    delta = 0.0
    for (_, a), (_, b) in itertools.pairwise(points):
        delta += b - a if b >= a else b
    (t0, v0), t1 = points[0], points[-1][0]
    sampled = t1 - t0
    average = sampled / (len(points) - 1)
    to_start, to_end = t0 - start, end - t1
    if delta > 0 and v0 >= 0:
        to_start = min(to_start, sampled * v0 / delta)
    threshold = average * 1.1
    interval = sampled + (to_start if to_start < threshold else average / 2)
    interval += to_end if to_end < threshold else average / 2
    increase = delta * interval / sampled
    return increase / (end - start) if is_rate else increase


def _match(actual: str, op: str, value: str) -> bool:
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    hit = re.fullmatch(value, actual) is not None
    return hit if op == "=~" else not hit


def _drop_name(labels: Labels) -> Labels:
    return tuple((k, v) for k, v in labels if k != "__name__")


def _vector(value: Vector | float) -> Vector:
    if isinstance(value, dict):
        return value
    return {(): value}


def _aggregate(node: Agg, vec: Vector) -> Vector:
    groups: dict[Labels, list[float]] = {}
    for labels, v in vec.items():
        if node.by is not None:
            key = tuple((k, val) for k, val in labels if k in node.by)
        elif node.without is not None:
            key = tuple((k, val) for k, val in labels if k not in node.without)
        else:
            key = ()
        groups.setdefault(key, []).append(v)
    fn: dict[str, Callable[[list[float]], float]] = {
        "sum": sum, "max": max, "min": min, "avg": lambda xs: sum(xs) / len(xs), "count": len}
    return {k: fn[node.op](vs) for k, vs in groups.items()}


def _histogram_quantile(q: float, vec: Vector) -> Vector:
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for labels, v in vec.items():
        d = dict(labels)
        bound = d.pop("le", None)
        if bound is None:
            continue
        groups.setdefault(tuple(sorted(d.items())), []).append((math.inf if bound == "+Inf" else float(bound), v))
    out: Vector = {}
    for key, buckets in groups.items():
        buckets.sort()
        total = buckets[-1][1]
        if total <= 0 or buckets[-1][0] != math.inf:
            continue
        rank, prev_le, prev_count = q * total, 0.0, 0.0
        for le, count in buckets:
            if count >= rank:
                if le == math.inf:
                    out[key] = prev_le
                else:
                    share = (rank - prev_count) / (count - prev_count) if count > prev_count else 1.0
                    out[key] = prev_le + (le - prev_le) * share
                break
            prev_le, prev_count = le, count
    return out


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a)),
}
_CMP: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
}


def _binop(node: BinOp, lhs: Vector | float, rhs: Vector | float) -> Vector | float:
    op = node.op
    if op in ("and", "or", "unless"):
        left, right = _vector(lhs), _vector(rhs)
        if op == "and":
            return {k: v for k, v in left.items() if k in right}
        if op == "unless":
            return {k: v for k, v in left.items() if k not in right}
        return {**right, **left} if left else right
    if not isinstance(lhs, dict) and not isinstance(rhs, dict):
        return float(_CMP[op](lhs, rhs)) if op in _CMP else _ARITH[op](lhs, rhs)

    def apply(a: float, b: float, keep: float) -> float | None:
        if op in _CMP:
            ok = _CMP[op](a, b)
            return float(ok) if node.bool_mod else (keep if ok else None)
        return _ARITH[op](a, b)

    out: Vector = {}
    if isinstance(lhs, dict) and isinstance(rhs, dict):
        pairs = [(k, lhs[k], rhs[k], lhs[k]) for k in lhs if k in rhs]
    elif isinstance(lhs, dict):
        pairs = [(k, v, float(rhs), v) for k, v in lhs.items()]  # type: ignore[arg-type]
    else:
        pairs = [(k, float(lhs), v, v) for k, v in rhs.items()]  # type: ignore[union-attr]
    for k, a, b, keep in pairs:
        value = apply(a, b, keep)
        if value is not None:
            out[k] = value
    return out


# -- drawing ---------------------------------------------------------------------------------------------------

BG, PANEL, GRID, TEXT, MUTED = "#111217", "#181b1f", "#2c3235", "#d8d9da", "#8e8e8e"
PALETTE = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#fade2a", "#8ab8ff", "#ff780a",
           "#96d98d", "#ffa6b0", "#c0d8ff"]
ROW_UNIT = 0.32  # inches per grid row (Grafana: 30 px)
COLUMN = 0.8  # inches per grid column (Grafana: 24 columns)


def format_value(value: float, unit: str) -> str:
    """A value the way Grafana writes it for the panel's unit."""
    if value is None or math.isnan(value):
        return "-"
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "ms":
        if abs(value) >= 1000:
            return f"{value / 1000:.1f} s"
        return f"{value:.0f} ms" if float(value).is_integer() or abs(value) >= 10 else f"{value:.1f} ms"
    suffix = {"ops": "/s", "Bps": "B/s"}.get(unit, "")
    for size, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f} {prefix}{suffix}".replace(" /s", "/s")
    if unit == "Bps":
        return f"{value:.0f} B/s"
    text = f"{value:.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.2f}"
    return text + suffix


def legend_of(fmt: str, labels: Labels) -> str:
    d = dict(labels)
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: d.get(m.group(1), ""), fmt).strip()
    return text or "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def panel_series(rec: Recording, panel: dict[str, Any]) -> list[tuple[str, list[float]]]:
    """(legend, values per timestamp) for every series the panel's targets produce."""
    out = []
    for target in panel.get("targets", []):
        results = rec.evaluate(target["expr"])
        keys: list[Labels] = []
        for r in results:
            for k in _vector(r):
                if k not in keys:
                    keys.append(k)
        for k in keys:
            values = [_vector(r).get(k, math.nan) for r in results]
            out.append((legend_of(target.get("legendFormat", ""), k), values))
    return out


def draw(dashboard: dict[str, Any], rec: Recording, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    header = 1.2
    width, height = 24 * COLUMN, rows * ROW_UNIT + header
    fig = plt.figure(figsize=(width, height), facecolor=BG)
    fig.text(0.008, 1 - 0.35 / height, dashboard["title"], color=TEXT, fontsize=16, weight="bold", va="top")
    span = f"{rec.started:%Y-%m-%d %H:%M:%S} UTC + {rec.times[-1]:.0f} s"
    fig.text(0.992, 1 - 0.38 / height, f"recorded metrics, {span} ({len(rec.times)} scrapes)   source: All   "
             "log type: All", color=MUTED, fontsize=10, va="top", ha="right")
    clock = rec.times  # seconds since the recording started; ticks are labelled with the wall-clock time
    ticks = [t for t in range(math.ceil(clock[0]), int(clock[-1]) + 1) if (rec.started.second + t) % 20 == 0]
    at_clock = FuncFormatter(lambda v, _p: f"{rec.started + timedelta(seconds=float(v)):%H:%M:%S}")
    pad_x, pad_y = 0.05, 0.06  # inches

    def box(gp: dict[str, int]) -> list[float]:
        left = (gp["x"] * COLUMN + pad_x) / width
        top = (header + gp["y"] * ROW_UNIT + pad_y) / height
        return [left, 1 - top - (gp["h"] * ROW_UNIT - 2 * pad_y) / height,
                (gp["w"] * COLUMN - 2 * pad_x) / width, (gp["h"] * ROW_UNIT - 2 * pad_y) / height]

    for panel in panels:
        gp = panel["gridPos"]
        if panel["type"] == "row":
            left, bottom, w, h = box(gp)
            fig.text(left, bottom + h / 2, panel["title"], color=TEXT, fontsize=13, weight="bold", va="center")
            continue
        left, bottom, w, h = box(gp)
        frame = fig.add_axes((left, bottom, w, h))
        frame.set_facecolor(PANEL)
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color(GRID)
        frame.text(0.015, 0.97, panel["title"], transform=frame.transAxes, color=TEXT, fontsize=10.5,
                   weight="bold", va="top")
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        unit = defaults.get("unit", "none")
        series = panel_series(rec, panel)
        if panel["type"] == "stat":
            _draw_stat(fig, frame, series, defaults, unit, clock)
            continue
        inner_h = 0.3 / (gp["h"] * ROW_UNIT)
        plot_top = 1 - inner_h
        legend_rows = min(3, max(1, math.ceil(len(series) / 3)))
        legend_h = 0.2 * legend_rows / (gp["h"] * ROW_UNIT)
        ax = frame.inset_axes((0.09, legend_h + 0.1, 0.89, plot_top - legend_h - 0.14))
        ax.set_facecolor(PANEL)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(colors=MUTED, labelsize=7.5, length=0)
        ax.grid(True, color=GRID, linewidth=0.6)
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(at_clock)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p, unit=unit: format_value(v, unit)))
        ax.set_xlim(clock[0], clock[-1])
        live = [(name, vals) for name, vals in series if any(not math.isnan(v) for v in vals)]
        if not live:
            ax.text(0.5, 0.5, "No data", transform=ax.transAxes, color=MUTED, ha="center", va="center", fontsize=11)
            ax.set_yticks([])
            continue
        stacked = defaults.get("custom", {}).get("stacking", {}).get("mode") == "normal"
        colors = [PALETTE[n % len(PALETTE)] for n in range(len(live))]
        if stacked:
            ys = [[0.0 if math.isnan(v) else v for v in vals] for _, vals in live]
            ax.stackplot(clock, *ys, colors=colors, alpha=0.45, linewidth=0)
            base = [0.0] * len(clock)
            for y, color in zip(ys, colors, strict=True):
                base = [a + b for a, b in zip(base, y, strict=True)]
                ax.plot(clock, base, color=color, linewidth=1.2)
        else:
            for (_, vals), color in zip(live, colors, strict=True):
                ax.plot(clock, vals, color=color, linewidth=1.4)
                ax.fill_between(clock, [0 if math.isnan(v) else v for v in vals], color=color, alpha=0.08)
        if defaults.get("min") == 0:
            ax.set_ylim(bottom=0)
        peak = max((v for _, vals in live for v in vals if not math.isnan(v)), default=0.0)
        if peak <= 0:  # a flat zero line: show a readable 0..1 axis, not five ticks all reading 0
            ax.set_ylim(0, 1)
        handles = [Line2D([], [], color=c, linewidth=3) for c in colors]
        frame.legend(handles, [name for name, _ in live], loc="lower left", bbox_to_anchor=(0.01, 0.0),
                     ncol=min(3, len(live)), frameon=False, fontsize=7.5, labelcolor=TEXT, handlelength=1.2,
                     columnspacing=1.2, borderaxespad=0.2)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, facecolor=BG)
    plt.close(fig)


def _draw_stat(fig: Any, frame: Any, series: list[tuple[str, list[float]]], defaults: dict[str, Any], unit: str,
               clock: list[float]) -> None:
    values = series[0][1] if series else []
    last = next((v for v in reversed(values) if not math.isnan(v)), math.nan)
    color = TEXT
    for step in defaults.get("thresholds", {}).get("steps", []):
        if step["value"] is None or (not math.isnan(last) and last >= step["value"]):
            color = {"green": "#73bf69", "orange": "#ff9830", "red": "#f2495c"}.get(step["color"], step["color"])
    if values and any(not math.isnan(v) for v in values):
        spark = frame.inset_axes((0, 0, 1, 0.45))
        spark.set_axis_off()
        spark.fill_between(clock, [0 if math.isnan(v) else v for v in values], color=color, alpha=0.18)
        spark.plot(clock, values, color=color, linewidth=1.0, alpha=0.7)
        spark.set_xlim(clock[0], clock[-1])
        spark.set_ylim(bottom=0)
    decimals = defaults.get("decimals")
    text = "No data" if math.isnan(last) else format_value(round(last, decimals) if decimals is not None else last,
                                                           unit)
    frame.text(0.5, 0.42, text, transform=frame.transAxes, color=color, fontsize=22 if text != "No data" else 12,
               weight="bold", ha="center", va="center")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dashboard", type=Path, default=REPO / "deploy/helm/sluice/dashboards/sluice.json")
    parser.add_argument("--recording", type=Path, default=REPO / "tools/deploy/metrics-recording.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs/grafana-dashboard.png")
    args = parser.parse_args(argv)
    dashboard = json.loads(args.dashboard.read_text())
    rec = Recording(json.loads(args.recording.read_text()))
    draw(dashboard, rec, args.out)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KB) from {len(rec.times)} scrapes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
