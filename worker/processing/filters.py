"""include / exclude: keep only the events a source's owner wants indexed, and count the rest.

Every event is tested, so each list is compiled into one alternation: one `search` call per event and list
instead of one per pattern. Patterns that would change meaning when joined (numbered back-references, whose
group numbers shift) or that do not compile together (the same group name twice) are searched one by one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Search = Callable[[str], bool]

_LEADING_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_GROUP_NUMBERS = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")
"""Constructs that refer to groups (`\\1`, `(?P=name)`, `(?(1)...)`): joining patterns could change them."""


def _scoped(pattern: str) -> str:
    """`pattern` as one alternative of a larger expression: its leading global flags (`(?i)foo`), which Python
    only allows at the very start, become a scoped group (`(?i:foo)`)."""
    flags = ""
    pos = 0
    while (m := _LEADING_FLAGS.match(pattern, pos)) is not None:
        flags += m.group(1)
        pos = m.end()
    body = pattern[pos:]
    if not flags:
        return f"(?:{body})"
    letters = "".join(dict.fromkeys(flags))
    if "x" in letters:
        body += "\n"  # a trailing `# comment` in verbose mode must not swallow the closing parenthesis
    return f"(?{letters}:{body})"


def compile_any(patterns: list[str]) -> Search | None:
    """A function telling whether any of `patterns` is found in a text (`re.search` semantics); None for none."""
    if not patterns:
        return None
    compiled = [re.compile(p) for p in patterns]  # invalid patterns fail here, with their own message
    if len(compiled) == 1:
        single = compiled[0].search
        return lambda text: single(text) is not None
    if not any(_GROUP_NUMBERS.search(p) for p in patterns):
        try:
            joined = re.compile("|".join(_scoped(p) for p in patterns)).search
        except re.error:
            pass
        else:
            return lambda text: joined(text) is not None
    searches = [c.search for c in compiled]
    return lambda text: any(s(text) is not None for s in searches)


class EventFilter:
    """Decides which events are kept: exclude wins; with any include pattern, an event must match one.

    `excluded` counts the events refused (by either list), for `sluice_events_excluded_total`: an event that
    is not indexed must be accounted for, never silently gone.
    """

    __slots__ = ("_exclude", "_include", "excluded")

    def __init__(self, include: list[str], exclude: list[str]) -> None:
        self._include = compile_any(include)
        self._exclude = compile_any(exclude)
        self.excluded = 0

    @property
    def active(self) -> bool:
        """False when there is nothing to test: callers skip the per-event call."""
        return self._include is not None or self._exclude is not None

    def keep(self, text: str) -> bool:
        exclude, include = self._exclude, self._include
        if (exclude is not None and exclude(text)) or (include is not None and not include(text)):
            self.excluded += 1
            return False
        return True
