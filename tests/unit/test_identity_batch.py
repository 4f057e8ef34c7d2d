"""Identity keys, in-batch merging, precedence ranks and the batch file format (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cmdb.batch import Batch, CIRecord, IdentityRef
from cmdb.errors import BadInputError, ConfigError
from cmdb.identity import identity_keys, merge_batch_items
from cmdb.ingest import scope_covers
from cmdb.model import Schema
from cmdb.reconcile import ReconcileConfig, freshness_horizon, resolve
from cmdb.store.base import AttrValue, Sighting, iso

SCHEMA = Schema.load()


def test_identity_keys_strongest_first_with_list_expansion() -> None:
    attrs = SCHEMA.validate("Server", {"serial_number": "S1", "mac_addresses": ["aa:aa:aa:aa:aa:01"],
                                       "hostname": "Web-01.", "ip_addresses": ["10.0.0.2", "10.0.0.1"]})
    keys = list(identity_keys(SCHEMA, "Server", attrs))
    assert keys == [
        "device:serial_number=s1",
        "device:mac_addresses=aa:aa:aa:aa:aa:01",
        "device:hostname+ip_addresses=web-01|10.0.0.1",
        "device:hostname+ip_addresses=web-01|10.0.0.2",
    ]
    assert identity_keys(SCHEMA, "Server", {"os": "Linux"}) == {}


def test_merge_batch_items_chains_through_shared_keys() -> None:
    recs = [
        CIRecord("Host", {"hostname": "a", "ip_addresses": ["10.0.0.1"]}, index=0),
        CIRecord("Server", {"hostname": "a", "ip_addresses": ["10.0.0.1"], "serial_number": "S"}, index=1),
        CIRecord("Server", {"serial_number": "S", "os": "Linux"}, index=2),
        CIRecord("Server", {"serial_number": "T"}, index=3),
    ]
    groups = merge_batch_items(SCHEMA, [(r, SCHEMA.validate(r.cls, r.attrs)) for r in recs])
    assert len(groups) == 2
    merged = groups[0]
    assert merged.cls == "Server" and merged.attrs["os"] == "Linux" and len(merged.items) == 3


def test_precedence_ranks_and_overrides() -> None:
    cfg = ReconcileConfig.from_mapping({"precedence_overrides": {"Host.os": ["scan", "ssh"], "Switch": ["snmp"]}})
    host = SCHEMA.ci_class("Server").ancestors
    assert cfg.rank("ssh", host, "serial_number") < cfg.rank("snmp", host, "serial_number")
    assert cfg.rank("scan", host, "os") < cfg.rank("ssh", host, "os")  # override for Host.os applies to Server
    assert cfg.rank("import:servicenow", host, "hostname") == cfg.rank("import", host, "hostname")
    assert cfg.rank("mystery", host, "hostname") > cfg.rank("scan", host, "hostname")
    with pytest.raises(ConfigError):
        ReconcileConfig.from_mapping({"stale_after_runs": 5, "retire_after_runs": 2})


def test_resolve_prefers_fresh_higher_source() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    cfg = ReconcileConfig(fresh_for=timedelta(days=7))
    cands = {"ssh": AttrValue("ssh", "Ubuntu", "r1", iso(now - timedelta(days=30))),
             "scan": AttrValue("scan", "Linux", "r2", iso(now))}
    fresh = {("ssh", "-"): Sighting("ssh", "-", iso(now), iso(now - timedelta(days=1)), "r1"),
             ("scan", "-"): Sighting("scan", "-", iso(now), iso(now), "r2")}
    anc = SCHEMA.ci_class("Server").ancestors
    horizon = freshness_horizon(now, cfg)
    assert resolve(cands, anc, "os", fresh, horizon, cfg).value == "Ubuntu"  # type: ignore[union-attr]
    fresh[("ssh", "-")].last_seen = iso(now - timedelta(days=8))
    assert resolve(cands, anc, "os", fresh, horizon, cfg).value == "Linux"  # type: ignore[union-attr]


def test_scope_coverage() -> None:
    assert scope_covers("10.0.0.0/16", "10.0.3.0/24")
    assert not scope_covers("10.0.3.0/24", "10.0.0.0/16")
    assert scope_covers("aws:123:eu-west-1", "aws:123:eu-west-1")
    assert not scope_covers("aws:123:eu-west-1", "aws:123:us-east-1")


def test_batch_file_parsing_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "b.yaml"
    good.write_text("source: manual\ncis:\n  - {ref: a, class: Team, name: net}\n"
                    "relationships:\n  - {type: OWNED_BY, from: a, to: {class: Team, name: x}}\n")
    b = Batch.from_file(good)
    assert b.cis[0].ref == "a" and b.cis[0].attrs == {"name": "net"}
    assert b.rels[0].dst == IdentityRef("Team", (("name", "x"),))
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: manual\ncis:\n  - {ref: a, class: Team\n")
    with pytest.raises(BadInputError, match=r"bad.yaml:\d+: not valid YAML"):
        Batch.from_file(bad)
    badjson = tmp_path / "bad.json"
    badjson.write_text('{"source": "x",\n "cis": [}\n')
    with pytest.raises(BadInputError, match=r"bad.json:2: not valid JSON"):
        Batch.from_file(badjson)
    with pytest.raises(BadInputError, match="'source' is required"):
        Batch.from_dict({"cis": []})
    with pytest.raises(BadInputError, match=r"cis\[1\] has no 'class'"):
        Batch.from_dict({"source": "x", "cis": [{"class": "Team", "name": "a"}, {"name": "b"}]})
    with pytest.raises(BadInputError, match=r"relationships\[0\].to"):
        Batch.from_dict({"source": "x", "relationships": [{"type": "DEPENDS_ON", "from": "a", "to": 5}]})
    with pytest.raises(BadInputError, match="cannot read"):
        Batch.from_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("end", "problem"), [
    ({"fqdn": "a.example"}, "needs 'class' and identity attributes"),
    ({"class": "Server"}, "needs at least one identity attribute"),
    ("", "expected a ref name"),
])
def test_bad_relationship_end_names_the_relationship_and_end(end: object, problem: str) -> None:
    doc = {"source": "x", "relationships": [{"type": "RUNS_ON", "from": "a", "to": "b"},
                                            {"type": "RUNS_ON", "from": end, "to": "b"}]}
    with pytest.raises(BadInputError, match=rf"^f\.json: relationships\[1\]\.from: .*{problem}"):
        Batch.from_dict(doc, origin="f.json")


def test_identity_reference_attributes_are_sorted_by_name() -> None:
    ref = {"class": "Server", "serial": "S1", "fqdn": "a.example", 7: "x"}
    b = Batch.from_dict({"source": "x", "relationships": [{"type": "RUNS_ON", "from": ref, "to": "b"}]})
    assert b.rels[0].src == IdentityRef("Server", (("7", "x"), ("fqdn", "a.example"), ("serial", "S1")))
