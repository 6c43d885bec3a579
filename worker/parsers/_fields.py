"""Conversions every parser needs, written for the per-line hot path.

Parsers run once per log line at tens of MB/s, so these helpers avoid `datetime` where plain string slicing
gives the same answer, cache the few distinct values a stream repeats (capture-window timestamps, TLS
protocol names) and never compile anything per call.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from worker.parsers.base import ParseError

ABSENT = "-"
"""How AWS text logs write "no value" in a column."""

IANA_PROTOCOLS: dict[str, str] = {
    "0": "hopopt",
    "1": "icmp",
    "2": "igmp",
    "4": "ipv4",
    "6": "tcp",
    "8": "egp",
    "17": "udp",
    "41": "ipv6",
    "47": "gre",
    "50": "esp",
    "51": "ah",
    "58": "ipv6-icmp",
    "89": "ospfigp",
    "103": "pim",
    "112": "vrrp",
    "115": "l2tp",
    "132": "sctp",
    "136": "udplite",
    "137": "mpls-in-ip",
}
"""IANA protocol number (as logged) -> lowercase IANA keyword, the form ECS wants in `network.transport`.

Only protocols seen in cloud flow logs; an unknown number keeps `network.iana_number` and gets no name.
"""

EPOCH_CACHE: dict[str, str] = {}
"""epoch seconds as logged -> ISO text (`epoch_to_iso`); hot parsers read it directly before calling."""
_EPOCH_CACHE_MAX = 4096


def epoch_to_iso(value: str) -> str:
    """Epoch seconds (as logged) -> `2019-06-11T09:56:08.000Z`.

    Flow logs repeat the same capture-window boundaries on thousands of lines, so a small cache turns the
    common case into one dict lookup. Raises ValueError for anything that is not an integer epoch.
    """
    cached = EPOCH_CACHE.get(value)
    if cached is not None:
        return cached
    try:
        tm = time.gmtime(int(value))
    except (OverflowError, OSError) as exc:
        raise ValueError(f"epoch seconds out of range: {value!r}") from exc
    out = f"{tm[0]:04d}-{tm[1]:02d}-{tm[2]:02d}T{tm[3]:02d}:{tm[4]:02d}:{tm[5]:02d}.000Z"
    if len(EPOCH_CACHE) >= _EPOCH_CACHE_MAX:
        EPOCH_CACHE.clear()
    EPOCH_CACHE[value] = out
    return out


def epoch_ms_to_iso(value: int) -> str:
    """Epoch milliseconds (CloudWatch Logs, WAF) -> `2019-03-13T23:05:48.220Z`; ValueError when out of range."""
    seconds, millis = divmod(int(value), 1000)
    try:
        tm = time.gmtime(seconds)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"epoch milliseconds out of range: {value!r}") from exc
    return f"{tm[0]:04d}-{tm[1]:02d}-{tm[2]:02d}T{tm[3]:02d}:{tm[4]:02d}:{tm[5]:02d}.{millis:03d}Z"


def iso_to_utc_ms(value: str) -> str:
    """Any ISO 8601 timestamp -> UTC with millisecond precision, `2018-07-02T22:23:00.186Z`.

    AWS writes UTC `...Z` stamps with 0-9 fraction digits; those are rewritten by slicing (truncating, as
    Elasticsearch's date parsing does, not rounding); fields out of range fall through to `datetime`, which
    rejects them (day 31 of a 30-day month is left for the index to refuse). Offsets, basic format
    (`20131102T010628Z`) and naive stamps (taken as UTC) go through `datetime`. Raises ValueError when the
    value is not a timestamp.

    A file's stamps share a few minutes, so a checked `YYYY-MM-DDTHH:MM` is remembered and later stamps of that
    minute only have their seconds and fraction checked (checking every field of every stamp cost about 2 µs;
    a cache by exact value misses on files with a stamp per second).
    """
    n = len(value)
    if n >= 20 and value[n - 1] == "Z" and value[16] == ":" and (value[:16] in _MINUTES_OK or _new_minute(value)):
        seconds = value[17:19]
        if seconds <= "59" and seconds.isdigit() and seconds.isascii():
            if n == 20:
                return value[:19] + ".000Z"
            if value[19] == ".":
                digits = value[20 : n - 1]
                if digits.isdigit() and digits.isascii():
                    return value[:23] + "Z" if n >= 24 else value[:19] + "." + (digits + "00")[:3] + "Z"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


_MINUTES_OK: set[str] = set()
"""`YYYY-MM-DDTHH:MM` prefixes `iso_to_utc_ms` has checked (bounded; cleared when full)."""


def _new_minute(value: str) -> bool:
    """Whether `value` starts with a valid `YYYY-MM-DDTHH:MM`; remembered in `_MINUTES_OK` when it does."""
    head = value[:16]
    fields = head[0:4] + head[5:7] + head[8:10] + head[11:13] + head[14:16]
    if not (
        head[4] == "-" and head[7] == "-" and head[10] == "T" and head[13] == ":"
        and fields.isdigit() and fields.isascii()
        and "01" <= head[5:7] <= "12" and "01" <= head[8:10] <= "31" and head[11:13] <= "23" and head[14:16] <= "59"
    ):
        return False
    if len(_MINUTES_OK) >= 4096:
        _MINUTES_OK.clear()
    _MINUTES_OK.add(head)
    return True


# Column readers. Every text parser converts columns the same way and differs only in how its dead letters
# name the column ("ALB field request_processing_time: ..."), so one implementation is built per parser with
# its prefix (`what`) at import time, and the per-line code calls the returned function directly. The prefix
# is bound as a default argument, not as a closure cell: entering a closure costs CPython 3.11 about 5% more
# per call, which the fastest parsers notice.


def _shown(value: str, clip: int) -> str:
    return repr(value[:clip] if clip else value)


def int_reader(what: str, clip: int = 0) -> Callable[[str, str], int]:
    """`read(value, name)`: the column as an int, else ParseError `<what> <name>: not an integer: <value>`
    (the value cut to `clip` characters when `clip`)."""

    def read(value: str, name: str, what: str = what, clip: int = clip) -> int:
        try:
            return int(value)
        except ValueError:
            raise ParseError(f"{what} {name}: not an integer: {_shown(value, clip)}") from None

    return read


def float_reader(what: str, clip: int = 0) -> Callable[[str, str], float]:
    """`read(value, name)`: the column as a float, else ParseError `<what> <name>: not a number: <value>`."""

    def read(value: str, name: str, what: str = what, clip: int = clip) -> float:
        try:
            return float(value)
        except ValueError:
            raise ParseError(f"{what} {name}: not a number: {_shown(value, clip)}") from None

    return read


def optional_int_reader(what: str) -> Callable[[str, str], int | None]:
    """`int_reader` for columns that may hold no value: `-` -> None."""

    def read(value: str, name: str, what: str = what) -> int | None:
        if value == "-":
            return None
        try:
            return int(value)
        except ValueError:
            raise ParseError(f"{what} {name}: not an integer: {value!r}") from None

    return read


def optional_float_reader(what: str, minus_one: bool = False) -> Callable[[str, str], float | None]:
    """`float_reader` for columns that may hold no value: `-` -> None, and `-1` too when `minus_one` (how load
    balancers write a time they could not measure)."""

    def read(value: str, name: str, what: str = what) -> float | None:
        if value == "-":
            return None
        try:
            return float(value)
        except ValueError:
            raise ParseError(f"{what} {name}: not a number: {value!r}") from None

    def read_minus_one(value: str, name: str, what: str = what) -> float | None:
        if value == "-" or value == "-1":
            return None
        try:
            return float(value)
        except ValueError:
            raise ParseError(f"{what} {name}: not a number: {value!r}") from None

    return read_minus_one if minus_one else read


def time_reader(what: str) -> Callable[[str, str], str]:
    """`read(value, name)`: an ISO 8601 column as UTC milliseconds (`iso_to_utc_ms`), else ParseError
    `<what> <name>: not an ISO 8601 timestamp: <value>`."""

    def read(value: str, name: str, what: str = what) -> str:
        try:
            return iso_to_utc_ms(value)
        except ValueError as exc:
            raise ParseError(f"{what} {name}: {exc}") from None

    return read


@lru_cache(maxsize=1024)
def _split_dotted(name: str) -> tuple[str, ...]:
    return tuple(name.split("."))


def set_dotted(doc: dict[str, Any], name: str, value: Any) -> None:
    """Set `a.b.c` in a nested document, creating the intermediate objects.

    For fields only known at run time (a flow-log column nobody has seen yet); fields known when the parser
    is written are put in place directly, which is faster.
    """
    path = _split_dotted(name)
    node = doc
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested document -> `{dotted name: leaf value}`; lists are leaves. The inverse of `set_dotted`."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


_TLS_VERSIONS: dict[str, tuple[str, str] | None] = {}


def tls_version(protocol: str) -> tuple[str, str] | None:
    """`TLSv1.2` / `tlsv12` / `TLSv1` -> (`tls`, `1.2` / `1.2` / `1.0`): ECS `tls.version_protocol`, `tls.version`.

    None when the value has no `v<digits>` part. A handful of distinct values exist, so results are cached.
    """
    try:
        return _TLS_VERSIONS[protocol]
    except KeyError:
        pass
    name, sep, number = protocol.partition("v")
    out: tuple[str, str] | None = None
    if sep and name and number and number.replace(".", "").isdigit():
        if "." not in number:
            number = number + ".0" if len(number) == 1 else number[0] + "." + number[1:]
        out = (name.lower(), number)
    if len(_TLS_VERSIONS) < 256:
        _TLS_VERSIONS[protocol] = out
    return out


IP_SEEN: dict[str, bool] = {}
"""`is_ip`'s answers so far. Per-line code that sees the same addresses over and over reads it inline
(`IP_SEEN.get(value) or is_ip(value)`) to save the call; never written to outside `is_ip`."""


def is_ip(value: str) -> bool:
    """Whether the text is one IPv4 or IPv6 address (no port, no list).

    Logs repeat the same few thousand addresses, so answers are remembered (bounded; cleared when full).
    """
    known = IP_SEEN.get(value)
    if known is not None:
        return known
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
        answer = True
    except (OSError, ValueError):
        answer = False
    if len(IP_SEEN) >= 65536:
        IP_SEEN.clear()
    IP_SEEN[value] = answer
    return answer


def split_host_port(value: str) -> tuple[str, str]:
    """`ip:port` / `[v6]:port` / `v6:port` (as load balancers log endpoints) -> (host without brackets, port).

    The port is whatever follows the last colon (not checked); no colon gives ("", value).
    """
    host, _, port = value.rpartition(":")
    if host[:1] == "[":
        host = host[1:-1]
    return host, port


_PORTED_PROTOCOLS = frozenset((6, 17, 132))


def community_id(src_ip: str, dst_ip: str, protocol: int, src_port: int, dst_port: int, seed: int = 0) -> str | None:
    """Community ID v1 flow hash (`1:<base64 sha1>`), the value Elastic's `community_id` processor writes.

    Only for TCP, UDP and SCTP: ICMP needs type/code, which flow logs do not carry. None when the addresses
    are not IPs of the same family.
    """
    if protocol not in _PORTED_PROTOCOLS:
        return None
    family = socket.AF_INET6 if ":" in src_ip else socket.AF_INET
    try:
        src = socket.inet_pton(family, src_ip)
        dst = socket.inet_pton(family, dst_ip)
    except (OSError, ValueError):
        return None
    if (src, src_port) > (dst, dst_port):
        src, dst, src_port, dst_port = dst, src, dst_port, src_port
    data = struct.pack("!H", seed) + src + dst + struct.pack("!BxHH", protocol, src_port, dst_port)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def snake_case(name: str) -> str:
    """`eventVersion` -> `event_version`, `requestID` -> `request_id`, `pkt-srcaddr` -> `pkt_srcaddr`."""
    out: list[str] = []
    prev_lower = False
    for i, ch in enumerate(name):
        if ch == "-":
            out.append("_")
            prev_lower = False
        elif ch.isupper():
            nxt_lower = i + 1 < len(name) and name[i + 1].islower()
            if out and out[-1] != "_" and (prev_lower or nxt_lower):
                out.append("_")
            out.append(ch.lower())
            prev_lower = False
        else:
            out.append(ch)
            prev_lower = ch.islower() or ch.isdigit()
    return "".join(out)

