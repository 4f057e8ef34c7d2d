"""Partition rules: which partition a batch's items land in, from its source and scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.batch import Batch
from cmdb.errors import ConfigError
from cmdb.ingest import ingest
from cmdb.partitions import PartitionRules, assign_partitions, partition_of
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore

RULES = PartitionRules.from_list([
    {"source": "aws", "partition": "aws"},
    {"source": "import:*", "partition": "imported"},
    {"source": "scan", "scope": "10.20.0.0/16", "partition": "dc-east"},
    {"source": "scan", "scope": "lab-*", "partition": "lab"},
])


def batch(source: str, scope: str | None = None, **attrs: str) -> Batch:
    return Batch.from_dict({"source": source, "scope": scope,
                            "cis": [{"class": "Host", "management_ip": "10.20.1.1", **attrs}]})


@pytest.mark.parametrize(("source", "scope", "want"), [
    ("aws", "acct/eu-west-1", "aws"),
    ("import:servicenow", None, "imported"),
    ("scan", "10.20.3.0/24", "dc-east"),  # a CIDR inside the rule's
    ("scan", "10.20.0.0/16", "dc-east"),
    ("scan", "10.21.0.0/24", None),  # outside: no rule, nothing assigned
    ("scan", "lab-berlin", "lab"),
    ("scan", None, None),
    ("snmp", "10.20.3.0/24", None),
])
def test_the_first_matching_rule_assigns_the_partition(source: str, scope: str | None, want: str | None) -> None:
    b = assign_partitions(batch(source, scope), RULES)
    assert b.cis[0].attrs.get("partition") == want
    assert partition_of(b.cis[0].attrs) == (want or "default")


def test_an_explicit_partition_wins_over_the_rules() -> None:
    b = assign_partitions(batch("aws", None, partition="finance"), RULES)
    assert b.cis[0].attrs["partition"] == "finance"


def test_bad_rules_are_refused_with_the_item_named() -> None:
    with pytest.raises(ConfigError, match=r"partitions\[0\] needs a source and a partition"):
        PartitionRules.from_list([{"source": "aws"}])
    with pytest.raises(ConfigError, match="unknown key"):
        PartitionRules.from_list([{"source": "aws", "partition": "aws", "scop": "x"}])
    with pytest.raises(ConfigError, match="must be a word"):
        PartitionRules.from_list([{"source": "aws", "partition": "a b"}])
    with pytest.raises(ConfigError, match="must be a list"):
        PartitionRules.from_list({"aws": "aws"})


def test_ingest_applies_the_configured_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cmdb.yaml"
    config.write_text("reconciliation: {}\npartitions:\n  - {source: aws, partition: cloud}\n")
    monkeypatch.setenv("CMDB_CONFIG", str(config))
    store = SqliteStore(tmp_path / "s.db")
    try:
        ingest(store, batch("aws"))
        ci = store.search(SearchQuery()).items[0]
        assert ci.attrs["partition"] == "cloud"
        # A source without a rule leaves the partition alone.
        ingest(store, batch("scan", "10.99.0.0/24"))
        again = store.get_ci(ci.id)
        assert again is not None and again.attrs["partition"] == "cloud"
    finally:
        store.close()
