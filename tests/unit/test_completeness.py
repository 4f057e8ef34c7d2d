"""Completeness, in the manner of NetBox's missing-filters test: what one part offers, the other must cover.

* Every attribute that a discovery transform emits for a CI exists in the schema for that CI's class,
  and every relationship type it emits exists, checked on every golden raw output in ``tests/data``
  (scan probe results, SNMP walks, SSH command output, network-device show commands, AWS API answers
  with the cross-scope link batches). A collector
  that starts writing a new attribute fails here until the schema has it.
* Every method of the store protocol (``GraphStore``) has a contract test on both stores. The rule, kept
  simple so that a new store method brings its test: some module of ``tests/contract/`` calls the method
  by name (``.<method>(``); the contract suite's ``store`` fixture runs every test there on SQLite and
  on Neo4j.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cmdb.batch import Batch
from cmdb.model import default_schema
from cmdb.store.base import GraphStore
from discovery.aws.records import ScopeContext, TagMap
from discovery.aws.services import SERVICES
from discovery.aws.to_batch import ScopeView, link_batches, scope_batch
from discovery.netdev.platforms import platform_for
from discovery.netdev.records import Record, record_from_dict
from discovery.netdev.transform import Reach, device_batch, merge_records
from discovery.scan.transform import transform_scan
from discovery.snmp import snmprec
from discovery.snmp.transform import RawDevice, to_snmp_batch
from discovery.ssh.commands import commands_for
from discovery.ssh.depmap import map_dependencies
from discovery.ssh.facts import CommandOutput, HostFacts, build_facts
from discovery.ssh.transform import transform_host

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data"


def ssh_host(hdir: Path) -> HostFacts:
    meta = json.loads((hdir / "meta.json").read_text())
    outputs = {name: CommandOutput(name, status, (hdir / f"{name}.out").read_text(), meta["stderr"].get(name, ""))
               for name, status in meta["exit"].items()}
    return build_facts(meta["target"], meta["address"], outputs, host_key=meta["host_key"], profile=meta["profile"],
                       collected_at=meta["collected_at"], commands=commands_for(meta["cert_paths"]),
                       cert_roots=meta["cert_paths"])


def netdev_lab(device: str, spec: dict[str, str]) -> Batch:
    platform = platform_for(spec["platform"])
    records: list[Record] = []
    for command in platform.commands:
        doc = yaml.safe_load((DATA / "netdev" / "lab" / device / f"{command.text.replace(' ', '_')}.yml").read_text())
        records.extend(record_from_dict(r) for r in doc["records"])
    reach = Reach(spec["address"], spec["address"], "SHA256:golden", "lab")
    return device_batch(platform, merge_records(records), reach, complete=True)


def golden_batches() -> Iterator[tuple[str, Batch]]:
    for path in sorted((DATA / "scan").glob("*.json")):
        batch = transform_scan(json.loads(path.read_text())).batch
        if batch is not None:
            yield f"scan/{path.name}", batch
    for path in sorted((DATA / "snmp").glob("*.snmprec")):
        yield f"snmp/{path.name}", to_snmp_batch(RawDevice("127.0.0.1", "127.0.0.1", "lab", snmprec.load(path)))
    hosts = [ssh_host(h) for h in sorted((DATA / "ssh").iterdir()) if (h / "meta.json").exists()]
    for host in hosts:
        yield f"ssh/{host.target}", transform_host(host, packages=("*",))
    for n, batch in enumerate(map_dependencies(hosts)):
        yield f"ssh/depmap-{n}", batch
    lab = yaml.safe_load((DATA / "netdev" / "lab" / "devices.yml").read_text())
    for device, spec in sorted(lab.items()):
        yield f"netdev/lab/{device}", netdev_lab(device, spec)
    views = []
    for service in SERVICES:
        doc = json.loads((DATA / "aws" / f"{service}.json").read_text())
        ctx = ScopeContext(doc["account"], doc["region"], service)
        out = SERVICES[service].transform(doc["raw"], ctx, TagMap())
        views.append(ScopeView(ctx, out, complete=True, written=True))
        yield f"aws/{service}", scope_batch(out, ctx, complete=True)
    for batch in link_batches(views):
        yield f"aws/{batch.scope}", batch


GOLDEN = list(golden_batches())


def test_every_method_has_golden_outputs() -> None:
    """Non-empty ones: a golden file that no longer exercises its transform would check nothing."""
    filled = [name for name, batch in GOLDEN if batch.cis and batch.rels]
    assert {name.split("/")[0] for name in filled} == {"scan", "snmp", "ssh", "netdev", "aws"}
    assert any(name.startswith("ssh/depmap") for name in filled)


@pytest.mark.parametrize(("name", "batch"), GOLDEN, ids=[name for name, _ in GOLDEN])
def test_every_emitted_attribute_is_in_the_schema(name: str, batch: Batch) -> None:
    schema = default_schema()
    missing = sorted({f"{c.cls}.{attr}" for c in batch.cis for attr in c.attrs
                      if c.cls not in schema.classes or attr not in schema.ci_class(c.cls).attributes})
    assert missing == [], f"{name} emits attributes the schema lacks"
    unknown = sorted({r.type for r in batch.rels} - set(schema.relationships))
    assert unknown == [], f"{name} emits relationship types the schema lacks"


def protocol_methods() -> list[str]:
    return sorted(name for name, value in vars(GraphStore).items() if callable(value) and not name.startswith("_"))


def contract_calls() -> set[str]:
    text = "\n".join(p.read_text() for p in sorted((TESTS / "contract").glob("*.py")))
    return set(re.findall(r"\.([a-z_][a-z0-9_]*)\(", text))


def test_every_store_method_has_a_contract_test() -> None:
    methods = protocol_methods()
    assert len(methods) > 15 and "write_batch" in methods and "search" in methods  # the protocol was read
    assert [m for m in methods if m not in contract_calls()] == []


@pytest.mark.parametrize(("name", "batch"), GOLDEN, ids=[name for name, _ in GOLDEN])
def test_items_are_numbered_by_position(name: str, batch: Batch) -> None:
    """An error names ``cis[5]`` for the sixth item, whichever method made the batch (``Batch.add_ci``)."""
    assert [c.index for c in batch.cis] == list(range(len(batch.cis)))
    assert [r.index for r in batch.rels] == list(range(len(batch.rels)))
    assert len({c.ref for c in batch.cis}) == len(batch.cis)  # one item per ref
