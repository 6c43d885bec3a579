"""Enrichment: GeoIP/ASN from MaxMind databases built here with mmdb-writer, and user-agent parsing.

The test databases carry a few networks of MaxMind's own test data (GeoLite2-City-Test / GeoLite2-ASN-Test)
in the GeoLite2 record layout, so the expected values are the ones in Elastic's AWS integration outputs.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet  # type: ignore[import-untyped]

from worker.enrich import FIELDS, UA_MAX_CHARS, Enricher


def _names(en: str) -> dict[str, Any]:
    return {"names": {"en": en, "de": en + " (de)"}}


def _city(continent: tuple[str, str], country: tuple[str, str], lat: float, lon: float,
          subdivisions: tuple[tuple[str, str], ...] = (), city: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "continent": {"code": continent[0], "geoname_id": 6255148, **_names(continent[1])},
        "country": {"iso_code": country[0], "geoname_id": 2661886, **_names(country[1])},
        "registered_country": {"iso_code": country[0], "geoname_id": 2661886, **_names(country[1])},
        "location": {"latitude": lat, "longitude": lon, "accuracy_radius": 76, "time_zone": "Europe/Stockholm"},
    }
    if subdivisions:
        rec["subdivisions"] = [{"iso_code": iso, "geoname_id": 1, **_names(name)} for iso, name in subdivisions]
    if city:
        rec["city"] = {"geoname_id": 2694762, **_names(city)}
    return rec


LINKOPING = _city(("EU", "Europe"), ("SE", "Sweden"), 58.4167, 15.6167, (("E", "Östergötland County"),), "Linköping")
LONDON = _city(("EU", "Europe"), ("GB", "United Kingdom"), 51.5142, -0.0931, (("ENG", "England"),), "London")
BOXFORD = _city(("EU", "Europe"), ("GB", "United Kingdom"), 51.75, -1.25,
                (("ENG", "England"), ("WBK", "West Berkshire")), "Boxford")
MILTON = _city(("NA", "North America"), ("US", "United States"), 47.2513, -122.3149, (("WA", "Washington"),), "Milton")
BHUTAN = _city(("AS", "Asia"), ("BT", "Bhutan"), 27.5, 90.5)
NORWAY = _city(("EU", "Europe"), ("NO", "Norway"), 62.0, 10.0)

GEO_LINKOPING = {
    "city_name": "Linköping",
    "continent_name": "Europe",
    "country_iso_code": "SE",
    "country_name": "Sweden",
    "location": {"lat": 58.4167, "lon": 15.6167},
    "region_iso_code": "SE-E",
    "region_name": "Östergötland County",
}
GEO_LONDON = {
    "city_name": "London",
    "continent_name": "Europe",
    "country_iso_code": "GB",
    "country_name": "United Kingdom",
    "location": {"lat": 51.5142, "lon": -0.0931},
    "region_iso_code": "GB-ENG",
    "region_name": "England",
}
GEO_MILTON = {
    "city_name": "Milton",
    "continent_name": "North America",
    "country_iso_code": "US",
    "country_name": "United States",
    "location": {"lat": 47.2513, "lon": -122.3149},
    "region_iso_code": "US-WA",
    "region_name": "Washington",
}


def _write(path: Path, db_type: str, networks: list[tuple[str, dict[str, Any]]]) -> str:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=db_type, languages=["en"],
                        description=f"{db_type} test database")
    for cidr, record in networks:
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return str(path)


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("mmdb")
    city = _write(d / "GeoLite2-City-Test.mmdb", "GeoLite2-City", [
        ("89.160.20.112/28", LINKOPING),
        ("81.2.69.142/31", LONDON),
        ("2.125.160.216/29", BOXFORD),
        ("216.160.83.56/29", MILTON),
        ("67.43.156.0/24", BHUTAN),
        ("2a02:cf40::/29", NORWAY),
        # Data on private ranges, which real databases do not have: proves they are skipped before the lookup.
        ("10.0.0.0/8", LONDON),
        ("192.168.0.0/16", LONDON),
    ])
    asn = _write(d / "GeoLite2-ASN-Test.mmdb", "GeoLite2-ASN", [
        ("89.160.0.0/17", {"autonomous_system_number": 29518, "autonomous_system_organization": "Bredband2 AB"}),
        ("216.160.83.56/29", {"autonomous_system_number": 209}),
        ("67.43.156.0/24", {"autonomous_system_number": 35908}),
        ("2a02:cf40::/29", {"autonomous_system_number": 217070, "autonomous_system_organization": "Example Norway AS"}),
        ("10.0.0.0/8", {"autonomous_system_number": 64512, "autonomous_system_organization": "Private"}),
    ])
    garbage = d / "garbage.mmdb"
    garbage.write_bytes(b"this is not a MaxMind database\n" * 100)
    return {"city": city, "asn": asn, "garbage": str(garbage), "dir": str(d)}


@pytest.fixture(scope="module")
def geo(dbs: dict[str, str]) -> Enricher:
    return Enricher(geoip_city=dbs["city"], geoip_asn=dbs["asn"])


@pytest.fixture(scope="module")
def full(dbs: dict[str, str]) -> Enricher:
    return Enricher(geoip_city=dbs["city"], geoip_asn=dbs["asn"], user_agent=True)


@pytest.fixture(scope="module")
def ua() -> Enricher:
    return Enricher(user_agent=True)


def _ua(enricher: Enricher, original: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"user_agent": {"original": original}}
    enricher.apply(doc)
    return doc["user_agent"]  # type: ignore[no-any-return]


# -- GeoIP ----------------------------------------------------------------------------------------------------


def test_source_destination_client_geo_and_as(geo: Enricher) -> None:
    doc: dict[str, Any] = {
        "source": {"ip": "89.160.20.115", "port": 443},
        "destination": {"ip": "216.160.83.57"},
        "client": {"ip": "81.2.69.143"},
        "event": {"kind": "event"},
    }
    geo.apply(doc)
    assert doc["source"] == {
        "ip": "89.160.20.115",
        "port": 443,
        "geo": GEO_LINKOPING,
        "as": {"number": 29518, "organization": {"name": "Bredband2 AB"}},
    }
    # An ASN record without an organisation gives the number alone.
    assert doc["destination"] == {"ip": "216.160.83.57", "geo": GEO_MILTON, "as": {"number": 209}}
    # Not in the ASN database: geo only.
    assert doc["client"] == {"ip": "81.2.69.143", "geo": GEO_LONDON}
    assert doc["event"] == {"kind": "event"}


def test_country_only_record_and_most_specific_subdivision(geo: Enricher) -> None:
    doc: dict[str, Any] = {"source": {"ip": "67.43.156.7"}, "destination": {"ip": "2.125.160.217"}}
    geo.apply(doc)
    assert doc["source"]["geo"] == {
        "continent_name": "Asia",
        "country_iso_code": "BT",
        "country_name": "Bhutan",
        "location": {"lat": 27.5, "lon": 90.5},
    }
    assert doc["source"]["as"] == {"number": 35908}
    assert doc["destination"]["geo"]["region_iso_code"] == "GB-WBK"
    assert doc["destination"]["geo"]["region_name"] == "West Berkshire"
    assert doc["destination"]["geo"]["city_name"] == "Boxford"


def test_ipv6_and_ipv4_mapped(geo: Enricher) -> None:
    doc: dict[str, Any] = {"source": {"ip": "2a02:cf40::1234"}, "destination": {"ip": "::ffff:89.160.20.113"}}
    geo.apply(doc)
    assert doc["source"]["geo"] == {
        "continent_name": "Europe",
        "country_iso_code": "NO",
        "country_name": "Norway",
        "location": {"lat": 62.0, "lon": 10.0},
    }
    assert doc["source"]["as"] == {"number": 217070, "organization": {"name": "Example Norway AS"}}
    assert doc["destination"]["geo"] == GEO_LINKOPING


@pytest.mark.parametrize("ip", [
    "10.1.2.3",  # private, although the test database has a record for it
    "192.168.1.1",
    "172.16.0.9",
    "127.0.0.1",
    "169.254.169.254",
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.251",  # multicast
    "255.255.255.255",
    "::1",
    "fe80::1",
    "fd00::1",
    "2001:db8::1",  # documentation
    "::ffff:10.0.0.1",
    "8.8.8.8",  # public, not in the test database: a miss adds nothing
    "not an ip",
    "",
])
def test_private_reserved_and_missing_add_nothing(geo: Enricher, ip: str) -> None:
    doc: dict[str, Any] = {"source": {"ip": ip}, "destination": {"ip": ip}, "client": {"ip": ip}}
    before = copy.deepcopy(doc)
    geo.apply(doc)
    assert doc == before


@pytest.mark.parametrize("doc", [
    {},
    {"source": "89.160.20.115"},
    {"source": ["89.160.20.115"]},
    {"source": None, "destination": {"ip": None}, "client": {"ip": 1234}},
    {"source": {"ip": ["89.160.20.115", "81.2.69.142"]}},
    {"source": {"address": "89.160.20.115"}},
    {"user_agent": "curl/8.0"},
    {"user_agent": {"original": None}},
    {"user_agent": {"original": 42}},
    {"user_agent": {"original": ""}},
])
def test_odd_documents_left_alone(full: Enricher, doc: dict[str, Any]) -> None:
    before = copy.deepcopy(doc)
    full.apply(doc)
    assert doc == before
    assert full.stats()["errors"] == 0


def test_fields_a_parser_set_are_kept(geo: Enricher) -> None:
    # WAF logs carry their own country code; a geo/as object that is not a dict is left alone.
    doc: dict[str, Any] = {
        "source": {"ip": "89.160.20.115", "geo": {"country_iso_code": "XX", "location": {"lat": 1.0}}},
        "destination": {"ip": "89.160.20.115", "geo": "somewhere", "as": {"number": 1}},
    }
    geo.apply(doc)
    assert doc["source"]["geo"] == {**GEO_LINKOPING, "country_iso_code": "XX", "location": {"lat": 1.0, "lon": 15.6167}}
    assert doc["destination"]["geo"] == "somewhere"
    assert doc["destination"]["as"] == {"number": 1, "organization": {"name": "Bredband2 AB"}}


def test_city_only_and_asn_only(dbs: dict[str, str]) -> None:
    city, asn = Enricher(geoip_city=dbs["city"]), Enricher(geoip_asn=dbs["asn"])
    assert city.enabled and asn.enabled
    d1: dict[str, Any] = {"source": {"ip": "89.160.20.115"}}
    d2: dict[str, Any] = {"source": {"ip": "89.160.20.115"}, "user_agent": {"original": "curl/8.5.0"}}
    city.apply(d1)
    asn.apply(d2)
    assert d1 == {"source": {"ip": "89.160.20.115", "geo": GEO_LINKOPING}}
    assert d2 == {"source": {"ip": "89.160.20.115", "as": {"number": 29518, "organization": {"name": "Bredband2 AB"}}},
                  "user_agent": {"original": "curl/8.5.0"}}  # user-agent parsing is off
    city.close()
    asn.close()


def test_cache_hits_and_no_shared_dicts(dbs: dict[str, str]) -> None:
    enricher = Enricher(geoip_city=dbs["city"], geoip_asn=dbs["asn"], cache_size=4)
    docs: list[dict[str, Any]] = []
    for i in range(100):
        doc: dict[str, Any] = {"source": {"ip": "89.160.20.115"}, "destination": {"ip": f"10.0.0.{i % 2}"}}
        enricher.apply(doc)
        docs.append(doc)
    stats = enricher.stats()
    assert stats["ip_misses"] == 3  # 89.160.20.115, 10.0.0.0, 10.0.0.1 (misses are cached too)
    assert stats["ip_hits"] == 197
    assert stats["ip_cached"] == 3
    assert all(d["source"]["geo"] == GEO_LINKOPING for d in docs)
    # Each document has its own dicts: mutating one leaves the others (and the cache) alone.
    docs[0]["source"]["geo"]["location"]["lat"] = 0.0
    docs[0]["source"]["as"]["organization"]["name"] = "changed"
    later: dict[str, Any] = {"source": {"ip": "89.160.20.115"}}
    enricher.apply(later)
    assert later["source"]["geo"] == GEO_LINKOPING == docs[1]["source"]["geo"]
    assert later["source"]["as"]["organization"]["name"] == "Bredband2 AB"
    # The LRU is bounded.
    for i in range(20):
        enricher.apply({"source": {"ip": f"81.2.69.{i}"}})
    assert enricher.stats()["ip_cached"] == 4
    enricher.close()


def test_no_cache(dbs: dict[str, str]) -> None:
    enricher = Enricher(geoip_city=dbs["city"], cache_size=0)
    for _ in range(3):
        doc: dict[str, Any] = {"client": {"ip": "81.2.69.142"}}
        enricher.apply(doc)
        assert doc["client"]["geo"] == GEO_LONDON
    assert enricher.stats() == {"errors": 0, "ip_hits": 0, "ip_misses": 0, "ip_cached": 0,
                                "ua_hits": 0, "ua_misses": 0, "ua_cached": 0}
    enricher.close()


def test_bad_database_paths(dbs: dict[str, str]) -> None:
    missing = str(Path(dbs["dir"]) / "nope" / "GeoLite2-City.mmdb")
    with pytest.raises(ValueError, match=r"GeoIP City database '.*nope/GeoLite2-City\.mmdb' cannot be read"):
        Enricher(geoip_city=missing)
    with pytest.raises(ValueError, match=r"GeoIP ASN database '.*garbage\.mmdb' cannot be read"):
        Enricher(geoip_city=dbs["city"], geoip_asn=dbs["garbage"])
    with pytest.raises(ValueError, match=r"GeoIP City database '.*mmdb0' cannot be read"):
        Enricher(geoip_city=dbs["dir"])  # a directory
    # The two databases swapped: named, and refused.
    with pytest.raises(ValueError, match=r"GeoLite2-ASN-Test\.mmdb' is a 'GeoLite2-ASN' database, not a City one"):
        Enricher(geoip_city=dbs["asn"])
    with pytest.raises(ValueError, match=r"GeoLite2-City-Test\.mmdb' is a 'GeoLite2-City' database, not a ASN one"):
        Enricher(geoip_asn=dbs["city"])
    with pytest.raises(ValueError, match="cache_size"):
        Enricher(user_agent=True, cache_size=-1)


def test_disabled_and_close(dbs: dict[str, str]) -> None:
    off = Enricher()
    assert not off.enabled
    assert not Enricher(geoip_city="", geoip_asn=None).enabled  # an empty path (unset in config) means off
    doc: dict[str, Any] = {"source": {"ip": "89.160.20.115"}, "user_agent": {"original": "curl/8.5.0"}}
    off.apply(doc)
    assert doc == {"source": {"ip": "89.160.20.115"}, "user_agent": {"original": "curl/8.5.0"}}
    with Enricher(geoip_city=dbs["city"], user_agent=True) as on:
        assert on.enabled
    assert not on.enabled
    on.apply(doc)
    assert "geo" not in doc["source"]
    on.close()  # twice is fine


def test_heavy_imports_only_when_on(dbs: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from worker.enrich import Enricher\n"
        "e = Enricher()\n"
        "assert 'maxminddb' not in sys.modules and 'ua_parser' not in sys.modules, 'imported while off'\n"
        f"e = Enricher(geoip_city={dbs['city']!r})\n"
        "assert 'maxminddb' in sys.modules and 'ua_parser' not in sys.modules\n"
        "e = Enricher(user_agent=True)\n"
        "assert 'ua_parser' in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)


def test_fields_declared() -> None:
    assert FIELDS["source.geo.location"] == "geo_point"
    assert FIELDS["client.geo.location"] == "geo_point"
    assert FIELDS["destination.as.number"] == "long"
    assert FIELDS["user_agent.os.full"] == "keyword"


# -- user agents ----------------------------------------------------------------------------------------------


def test_ua_matches_elastic_outputs(ua: Enricher) -> None:
    # The agents and values of Elastic's AWS integration expected outputs (ALB, CloudTrail, S3 access logs).
    assert _ua(ua, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/78.0.3904.108 Safari/537.36") == {
        "original": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    "Chrome/78.0.3904.108 Safari/537.36",
        "name": "Chrome",
        "version": "78.0.3904.108",
        "os": {"name": "Windows", "version": "10", "full": "Windows 10"},
        "device": {"name": "Other"},
    }
    java = ("AWS-Support-TrustedAdvisor, aws-internal/3 aws-sdk-java/1.11.590 "
            "Linux/4.9.137-0.1.ac.218.74.329.metal1.x86_64 OpenJDK_64-Bit_Server_VM/25.212-b03 java/1.8.0_212 "
            "vendor/Oracle_Corporation")
    assert _ua(ua, java) == {
        "original": java,
        "name": "aws-sdk-java",
        "version": "1.11.590",
        "os": {"name": "Linux", "version": "4.9.137", "full": "Linux 4.9.137"},
        "device": {"name": "Other"},
    }
    assert _ua(ua, "curl/7.46.0") == {
        "original": "curl/7.46.0", "name": "curl", "version": "7.46.0", "device": {"name": "Other"}
    }
    assert _ua(ua, "Hello, world") == {"original": "Hello, world", "name": "Other", "device": {"name": "Other"}}
    mac = _ua(ua, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/95.0.4638.69 Safari/537.36")
    assert (mac["name"], mac["version"], mac["os"], mac["device"]) == (
        "Chrome", "95.0.4638.69", {"name": "Mac OS X", "version": "10.15.7", "full": "Mac OS X 10.15.7"},
        {"name": "Mac"},
    )
    headless = _ua(ua, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "HeadlessChrome/100.0.4896.88 Safari/537.36")
    assert (headless["name"], headless["version"]) == ("HeadlessChrome", "100.0.4896")
    assert headless["os"] == {"name": "Linux"}
    firefox = _ua(ua, "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:24.0) Gecko/20100101 Firefox/24.0")
    # Elasticsearch writes "24.0." here (a trailing-dot quirk of its processor); we write the plain version.
    assert (firefox["name"], firefox["version"], firefox["os"]["full"]) == ("Firefox", "24.0", "Windows 7")


@pytest.mark.parametrize(("original", "name", "version", "os_full", "device"), [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Mobile/15E148 Safari/604.1", "Mobile Safari", "17.4.1", "iOS 17.4.1", "iPhone"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 "
     "Mobile Safari/537.36", "Chrome Mobile", "124.0.6367.82", "Android 14", "Samsung SM-S918B"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
     "Safari/537.36 Edg/124.0.2478.80", "Edge", "124.0.2478.80", "Windows 10", "Other"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 "
     "Safari/605.1.15", "Safari", "17.4.1", "Mac OS X 10.15.7", "Mac"),
    ("aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.167.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off "
     "command/s3.cp", "aws-cli", "2.15.30", "Linux 6.1.79", "Other"),
    ("[aws-sdk-java/1.12.701 Linux/5.10.215-203.850.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS "
     "java/17.0.10 vendor/Amazon.com_Inc. cfg/retry-mode/standard]", "aws-sdk-java", "1.12.701",
     "Linux 5.10.215", "Other"),
    ("aws-sdk-go/1.51.21 (go1.22.2; linux; amd64)", "aws-sdk-go", "1.51.21", None, "Other"),
    ("curl/8.5.0", "curl", "8.5.0", None, "Other"),
])
def test_ua_browsers_and_sdks(ua: Enricher, original: str, name: str, version: str, os_full: str | None,
                              device: str) -> None:
    out = _ua(ua, original)
    assert out["name"] == name
    assert out["version"] == version
    assert out.get("os", {}).get("full") == os_full
    assert out["device"] == {"name": device}


def test_ua_cache_and_existing_fields(dbs: dict[str, str]) -> None:
    enricher = Enricher(geoip_city=dbs["city"], user_agent=True, cache_size=16)
    agents = ["curl/8.5.0", "Wget/1.21.3", "curl/8.5.0", "curl/8.5.0", "Wget/1.21.3"]
    for agent in agents:
        enricher.apply({"user_agent": {"original": agent}, "source": {"ip": "10.0.0.1"}})
    stats = enricher.stats()
    assert (stats["ua_misses"], stats["ua_hits"], stats["ua_cached"]) == (2, 3, 2)
    assert (stats["ip_misses"], stats["ip_hits"]) == (1, 4)
    # A parser's own values win; the missing ones are filled; documents do not share the cached dicts.
    doc: dict[str, Any] = {"user_agent": {"original": "aws-sdk-go/1.51.21 (go1.22.2; linux; amd64)",
                                          "name": "mine", "os": {"version": "5"}}}
    enricher.apply(doc)
    assert doc["user_agent"] == {"original": "aws-sdk-go/1.51.21 (go1.22.2; linux; amd64)", "name": "mine",
                                 "version": "1.51.21", "os": {"version": "5", "name": "Linux"},
                                 "device": {"name": "Other"}}
    first = _ua(enricher, "aws-sdk-go/1.51.21 (go1.22.2; linux; amd64)")
    first["os"]["name"] = "changed"
    first["device"]["name"] = "changed"
    again = _ua(enricher, "aws-sdk-go/1.51.21 (go1.22.2; linux; amd64)")
    assert (again["os"], again["device"]) == ({"name": "Linux"}, {"name": "Other"})
    enricher.close()


def test_ua_long_and_strange_strings() -> None:
    ua = Enricher(user_agent=True)
    long_ua = "Mozilla/5.0 " + "x" * 20000
    assert _ua(ua, long_ua)["name"] == "Other"
    # Parsed and cached on the first UA_MAX_CHARS characters; the original is kept whole.
    padded = "curl/8.5.0 " + "y" * UA_MAX_CHARS
    out = _ua(ua, padded + "tail one")
    assert (out["original"], out["name"], out["version"]) == (padded + "tail one", "curl", "8.5.0")
    assert _ua(ua, padded + "tail two")["name"] == "curl"
    assert ua.stats()["ua_hits"] == 1
    assert _ua(ua, "\x00\ufffd ☃ -")["device"] == {"name": "Other"}
    assert ua.stats()["errors"] == 0
