"""Optional enrichment of parsed documents: GeoIP/ASN from MaxMind `.mmdb` files, and user-agent parsing.

Off by default. When on it runs once per document on the pipeline's hot path, so every lookup goes through a
bounded LRU (`functools.lru_cache`, implemented in C) keyed on the IP or user-agent string: flow logs and access
logs repeat the same few thousand addresses and agents, so after warm-up a document costs a few dict lookups.
Misses (private addresses, IPs the database does not know, unparseable agents) are cached too.

Output follows Elasticsearch's `geoip` and `user_agent` ingest processors, as Elastic's AWS integration uses
them, so enriched documents compare field by field with Elastic's:

- `<obj>.geo.{continent_name, country_iso_code, country_name, region_iso_code, region_name, city_name,
  location: {lat, lon}}` for `obj` in source, destination, client (`region_*` from the most specific
  subdivision, `region_iso_code` as `<country>-<subdivision>`, English names).
- `<obj>.as.{number, organization.name}` from an ASN database.
- `user_agent.{name, version, os.name, os.version, os.full, device.name}`; `name` and `device.name` are
  "Other" when uap-core does not recognise the agent, `os` is left out then.

Fields a parser already set are never overwritten (WAF logs carry their own `source.geo.country_iso_code`).
`maxminddb` and `ua_parser` are imported only when their feature is on.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from worker.parsers.base import FieldType

if TYPE_CHECKING:
    from maxminddb.reader import Reader

__all__ = ["FIELDS", "UA_MAX_CHARS", "Enricher"]

GEO_OBJECTS = ("source", "destination", "client")
"""Top-level ECS objects whose `ip` is looked up."""

FIELDS: dict[str, FieldType] = {
    **{f"{obj}.geo.location": "geo_point" for obj in GEO_OBJECTS},
    **{f"{obj}.as.number": "long" for obj in GEO_OBJECTS},
    **{
        f"{obj}.{name}": "keyword"
        for obj in GEO_OBJECTS
        for name in (
            "geo.continent_name",
            "geo.country_iso_code",
            "geo.country_name",
            "geo.region_iso_code",
            "geo.region_name",
            "geo.city_name",
            "as.organization.name",
        )
    },
    "user_agent.name": "keyword",
    "user_agent.version": "keyword",
    "user_agent.os.name": "keyword",
    "user_agent.os.version": "keyword",
    "user_agent.os.full": "keyword",
    "user_agent.device.name": "keyword",
}
"""Index-template types of the fields enrichment may add."""

UA_MAX_CHARS = 1024
"""User agents are parsed (and cached) on their first 1024 characters: real agents are shorter, and longer
values (scanners' payloads, up to 8 KiB in ALB logs) would cost ~40 ns a character and pin memory in the cache."""

# A cached IP result: (flat geo fields without location, (lat, lon) or None, as.number or None, as org or None).
_IpHit = tuple[dict[str, str], tuple[float, float] | None, int | None, str | None]
# A cached user-agent result: (name, version, os fields or None, device name).
_UaHit = tuple[str, str | None, dict[str, str] | None, str]


def _names_en(obj: Any) -> str | None:
    """`obj["names"]["en"]` of a GeoIP2 record part, when there."""
    if isinstance(obj, dict):
        names = obj.get("names")
        if isinstance(names, dict):
            name = names.get("en")
            if isinstance(name, str) and name:
                return sys.intern(name)  # cached results repeat the same few thousand names
    return None


def _is_public(ip: str) -> str | None:
    """The address to look up (IPv4-mapped IPv6 unwrapped), or None when `ip` is not a global unicast IP."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if not addr.is_global or addr.is_multicast:
        return None
    return str(addr)


def _open_database(path: str, role: str, wrong_types: tuple[str, ...]) -> Reader:
    import maxminddb

    try:
        reader = maxminddb.open_database(os.fspath(path), maxminddb.MODE_AUTO)
    except (OSError, ValueError, RuntimeError) as exc:  # InvalidDatabaseError is a RuntimeError
        raise ValueError(f"GeoIP {role} database {path!r} cannot be read: {exc}") from exc
    db_type = str(getattr(reader.metadata(), "database_type", ""))
    if any(w in db_type for w in wrong_types):
        reader.close()
        raise ValueError(f"GeoIP {role} database {path!r} is a {db_type!r} database, not a {role} one")
    return reader


def _city_fields(rec: Any) -> tuple[dict[str, str], tuple[float, float] | None]:
    """The ECS `geo` fields of one GeoIP2/GeoLite2 City (or Country) record."""
    geo: dict[str, str] = {}
    if not isinstance(rec, dict):
        return geo, None
    if name := _names_en(rec.get("continent")):
        geo["continent_name"] = name
    country = rec.get("country")
    country_iso = None
    if isinstance(country, dict):
        iso = country.get("iso_code")
        if isinstance(iso, str) and iso:
            country_iso = geo["country_iso_code"] = sys.intern(iso)
        if name := _names_en(country):
            geo["country_name"] = name
    subdivisions = rec.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions:
        sub = subdivisions[-1]  # the most specific one, as Elasticsearch's geoip processor picks
        if isinstance(sub, dict):
            sub_iso = sub.get("iso_code")
            if country_iso and isinstance(sub_iso, str) and sub_iso:
                geo["region_iso_code"] = sys.intern(f"{country_iso}-{sub_iso}")
            if name := _names_en(sub):
                geo["region_name"] = name
    if name := _names_en(rec.get("city")):
        geo["city_name"] = name
    location = None
    loc = rec.get("location")
    if isinstance(loc, dict):
        lat, lon = loc.get("latitude"), loc.get("longitude")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            location = (float(lat), float(lon))
    return geo, location


def _asn_fields(rec: Any) -> tuple[int | None, str | None]:
    if not isinstance(rec, dict):
        return None, None
    number = rec.get("autonomous_system_number")
    org = rec.get("autonomous_system_organization")
    return (number if isinstance(number, int) else None), (sys.intern(org) if isinstance(org, str) and org else None)


def _version(*parts: str | None) -> str:
    """"major.minor.patch.patch_minor" up to the first missing part."""
    out: list[str] = []
    for part in parts:
        if not part:
            break
        out.append(part)
    return ".".join(out)


def _merge(target: dict[str, Any], key: str, values: dict[str, Any]) -> None:
    """`target[key] = values`, or fill the keys missing from an existing `target[key]` dict."""
    current = target.get(key)
    if current is None:
        target[key] = values
    elif isinstance(current, dict):
        for k, v in values.items():
            if k not in current:
                current[k] = v
            elif isinstance(v, dict):
                _merge(current, k, v)


class Enricher:
    """Adds GeoIP, ASN and user-agent fields to parsed documents (see the module doc).

    `geoip_city` / `geoip_asn`: paths of MaxMind `.mmdb` files (empty or None: off); an unreadable file raises
    ValueError here. `user_agent`: parse `user_agent.original`. `cache_size`: entries in each LRU (IPs, agents);
    0 disables caching. One instance can be shared by every pipeline of the process (the caches are thread-safe).
    """

    def __init__(self, geoip_city: str | None = None, geoip_asn: str | None = None, user_agent: bool = False,
                 cache_size: int = 65536) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.cache_size = cache_size
        self.errors = 0
        """Documents on which enrichment gave up part-way (an unexpected shape); they are still emitted."""
        self._city: Reader | None = None
        self._asn: Reader | None = None
        self._ua_parse: Callable[[str], Any] | None = None
        self._ip: Callable[[str], _IpHit | None] | None = None
        self._ua: Callable[[str], _UaHit] | None = None
        if geoip_city:
            self._city = _open_database(geoip_city, "City", ("ASN", "ISP", "Anonymous", "Connection-Type"))
        if geoip_asn:
            try:
                self._asn = _open_database(geoip_asn, "ASN", ("City", "Country"))
            except ValueError:
                self.close()
                raise
        if user_agent:
            try:
                self._ua_parse = self._load_ua_parser()
            except BaseException:
                self.close()
                raise
        if self._city is not None or self._asn is not None:
            self._ip = self._cached(self._lookup_ip)
        if self._ua_parse is not None:
            self._ua = self._cached(self._lookup_ua)

    def _cached(self, fn: Callable[[str], Any]) -> Callable[[str], Any]:
        return functools.lru_cache(maxsize=self.cache_size)(fn) if self.cache_size else fn

    @staticmethod
    def _load_ua_parser() -> Callable[[str], Any]:
        import ua_parser

        # The fastest resolver installed: ua-parser-rs (Rust regex, a declared dependency), else google-re2,
        # else Python's re. The compiled resolvers take the lazily-built matcher list, as ua_parser does itself.
        resolver_cls = ua_parser.BestAvailableResolver
        lazy = resolver_cls is not ua_parser.BasicResolver
        matchers = ua_parser.load_lazy_builtins() if lazy else ua_parser.load_builtins()
        resolver = resolver_cls(matchers)
        domains = ua_parser.Domain.ALL
        return lambda ua: resolver(ua, domains)

    @property
    def enabled(self) -> bool:
        """Whether any enrichment is on (when not, `apply` does nothing and need not be called)."""
        return self._ip is not None or self._ua is not None

    # -- lookups (behind the LRUs) -----------------------------------------------------------------------------

    def _lookup_ip(self, ip: str) -> _IpHit | None:
        addr = _is_public(ip)
        if addr is None:
            return None
        geo: dict[str, str] = {}
        location = None
        number = org = None
        try:
            if self._city is not None:
                geo, location = _city_fields(self._city.get(addr))
            if self._asn is not None:
                number, org = _asn_fields(self._asn.get(addr))
        except (ValueError, TypeError):  # an address form the reader refuses (IPv6 in an IPv4-only database)
            return None
        if not geo and location is None and number is None and org is None:
            return None
        return geo, location, number, org

    def _lookup_ua(self, original: str) -> _UaHit:
        assert self._ua_parse is not None
        res = self._ua_parse(original)
        name, version = "Other", None
        if (ua := res.user_agent) is not None:
            name = ua.family
            version = _version(ua.major, ua.minor, ua.patch, ua.patch_minor) or None
        os_fields = None
        if (uos := res.os) is not None and uos.family and uos.family != "Other":
            os_fields = {"name": uos.family}
            os_version = _version(uos.major, uos.minor, uos.patch, uos.patch_minor)
            if os_version:
                os_fields["version"] = os_version
                os_fields["full"] = f"{uos.family} {os_version}"
        device = res.device.family if res.device is not None and res.device.family else "Other"
        return name, version, os_fields, device

    # -- per document ------------------------------------------------------------------------------------------

    def apply(self, doc: dict[str, Any]) -> None:
        """Add the enabled enrichments to `doc` in place. Never raises: odd shapes are left as they are."""
        try:
            lookup_ip = self._ip
            if lookup_ip is not None:
                for key in GEO_OBJECTS:
                    obj = doc.get(key)
                    if isinstance(obj, dict):
                        ip = obj.get("ip")
                        if isinstance(ip, str) and (hit := lookup_ip(ip)) is not None:
                            if "geo" in obj or "as" in obj:
                                self._merge_ip(obj, hit)
                                continue
                            # The common case, inline. Fresh dicts every time: documents must not share (and so
                            # could mutate) the cached values.
                            flat, location, as_number, as_org = hit
                            if flat or location is not None:
                                geo: dict[str, Any] = flat.copy()
                                if location is not None:
                                    geo["location"] = {"lat": location[0], "lon": location[1]}
                                obj["geo"] = geo
                            if as_number is not None:
                                obj["as"] = ({"number": as_number, "organization": {"name": as_org}} if as_org
                                             else {"number": as_number})
                            elif as_org is not None:
                                obj["as"] = {"organization": {"name": as_org}}
            lookup_ua = self._ua
            if lookup_ua is not None:
                ua = doc.get("user_agent")
                if isinstance(ua, dict):
                    original = ua.get("original")
                    if isinstance(original, str) and original:
                        if len(original) > UA_MAX_CHARS:
                            original = original[:UA_MAX_CHARS]
                        self._add_ua(ua, lookup_ua(original))
        except Exception:  # never fail a document over enrichment
            self.errors += 1

    @staticmethod
    def _merge_ip(obj: dict[str, Any], hit: _IpHit) -> None:
        """Add an IP's fields to an object that already has `geo` or `as` (a parser's own values win)."""
        flat, location, number, org = hit
        if flat or location is not None:
            geo: dict[str, Any] = dict(flat)
            if location is not None:
                geo["location"] = {"lat": location[0], "lon": location[1]}
            _merge(obj, "geo", geo)
        if number is not None or org is not None:
            as_: dict[str, Any] = {}
            if number is not None:
                as_["number"] = number
            if org is not None:
                as_["organization"] = {"name": org}
            _merge(obj, "as", as_)

    @staticmethod
    def _add_ua(ua: dict[str, Any], hit: _UaHit) -> None:
        name, version, os_fields, device = hit
        if "name" not in ua:
            ua["name"] = name
        if version is not None and "version" not in ua:
            ua["version"] = version
        if os_fields is not None:
            if "os" in ua:
                _merge(ua, "os", dict(os_fields))
            else:
                ua["os"] = dict(os_fields)
        if "device" in ua:
            _merge(ua, "device", {"name": device})
        else:
            ua["device"] = {"name": device}

    # -- housekeeping -------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Cache hits, misses and sizes (for metrics and tests); zeros for a feature that is off or uncached."""
        out = {"errors": self.errors}
        for label, fn in (("ip", self._ip), ("ua", self._ua)):
            info = getattr(fn, "cache_info", None)
            if info is not None:
                ci = info()
                out[f"{label}_hits"], out[f"{label}_misses"], out[f"{label}_cached"] = ci.hits, ci.misses, ci.currsize
            else:
                out[f"{label}_hits"] = out[f"{label}_misses"] = out[f"{label}_cached"] = 0
        return out

    def close(self) -> None:
        """Release the database files and caches; `apply` does nothing afterwards. Safe to call twice."""
        for fn in (self._ip, self._ua):
            clear = getattr(fn, "cache_clear", None)
            if clear is not None:
                clear()
        self._ip = self._ua = self._ua_parse = None
        for reader in (self._city, self._asn):
            if reader is not None:
                reader.close()
        self._city = self._asn = None

    def __enter__(self) -> Enricher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
