"""The compact text forms the Neo4j store writes (provenance, history packs, search tokens): each
round-trips exactly, and the older plain forms still written by earlier versions still read."""

from __future__ import annotations

import json
from typing import Any

from cmdb.store.base import AttrValue
from cmdb.store.neo4j.codecs import attr_tokens, pack_events, pack_text, parse_provenance, prov_blob, prov_json


def _prov(**by_attr: dict[str, tuple[Any, str, str]]) -> dict[str, dict[str, AttrValue]]:
    return {a: {s: AttrValue(s, v, run, at) for s, (v, run, at) in srcs.items()} for a, srcs in by_attr.items()}


def test_provenance_round_trips_values_equal_to_the_current_one_and_values_that_differ() -> None:
    attrs = {"hostname": "web1", "ip_addresses": ["10.0.0.1"], "cpu_count": 1, "managed": True}
    prov = _prov(
        **{"@class": {"ssh": ("Server", "r2", "t2"), "scan": ("Host", "r1", "t1")}},
        hostname={"ssh": ("web1", "r2", "t2"), "scan": ("WEB1", "r1", "t1")},
        ip_addresses={"ssh": (["10.0.0.1"], "r2", "t2"), "scan": (["10.0.0.1", "10.0.0.2"], "r1", "t1")},
        cpu_count={"ssh": (1, "r2", "t2"), "manual": (True, "r3", "t3")},  # True is not 1
        managed={"manual": (True, "r3", "t3")},
        os={"scan": ("linux", "r1", "t1")},  # a value that did not win and is not in attrs
    )
    blob = prov_blob(prov, attrs, "Server")
    assert parse_provenance(blob, attrs, "Server") == prov
    assert len(blob) < len(prov_json(prov))
    stored = json.loads(blob)
    assert stored[1]["hostname"]["ssh"] == stored[0].index(["r2", "t2"])  # the current value is not repeated
    assert stored[1]["cpu_count"]["manual"] == [True, stored[0].index(["r3", "t3"])]


def test_provenance_in_the_sqlite_form_still_reads() -> None:
    prov = _prov(hostname={"scan": ("web1", "r1", "t1")})
    assert parse_provenance(prov_json(prov), {"hostname": "web1"}, "Host") == prov


def test_event_packs_round_trip_and_keep_events_that_differ_from_the_pack_head() -> None:
    rows = [
        [11, "t1", "ci-a", None, "ci.created", "scan", "run-1", None, None, None, {"class": "Host"}, None],
        [12, "t1", "ci-a", "ci-b", "rel.created", "scan", "run-1", "rel-x", "RUNS_ON", None, {}, None],
        [13, "t1", "ci-a", None, "ci.attr", "ssh", "run-1", None, "os", "linux", "ubuntu", "alice"],
    ]
    text = pack_text(rows)
    assert len(text) < len(json.dumps(rows))
    back = pack_events(text)
    assert [[e.seq, e.at, e.ci_id, e.peer_id, e.kind, e.source, e.run_id, e.rel_id, e.attr, e.old, e.new, e.actor]
            for e in back] == rows
    assert [e.seq for e in pack_events(json.dumps(rows))] == [11, 12, 13]  # the plain list form


def test_search_tokens_compare_numbers_by_value_and_cover_list_and_mapping_elements() -> None:
    tokens = attr_tokens({"name": "a", "cpu_count": 4, "ratio": 2.0, "up": True, "ips": ["10.0.0.1", "10.0.0.2"],
                          "tags": {"env": "prod"}, "none": None})
    assert tokens == sorted(["name=s:a", "cpu_count=n:4", "ratio=n:2", "up=n:1", "ips=s:10.0.0.1",
                             "ips=s:10.0.0.2", "tags=s:prod"])
