"""The bundled sample estate is a valid native batch against ``cmdb/schema/core.yaml``.

Pure checks with PyYAML only (no cmdb imports), so they hold whatever the core code does.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import runpy
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ESTATE = ROOT / "cmdb" / "sample" / "estate.yaml"
SCHEMA = ROOT / "cmdb" / "schema" / "core.yaml"
GENERATOR = ROOT / "scripts" / "make_sample_estate.py"

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
TODAY = "2026-11-22"  # the day the sample's expiry dates are laid out around
# Impact-carrying edges (the schema's impact is not 'none'); they must form a DAG.
IMPACT_TYPES_EXCLUDED = {"none"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    with SCHEMA.open(encoding="utf-8") as f:
        doc: dict[str, Any] = yaml.safe_load(f)
    return doc


@pytest.fixture(scope="module")
def estate() -> dict[str, Any]:
    with ESTATE.open(encoding="utf-8") as f:
        doc: dict[str, Any] = yaml.safe_load(f)
    return doc


def lineage(schema: dict[str, Any], cls: str) -> list[str]:
    """``cls`` and its ancestors, nearest first."""
    out = []
    current: str | None = cls
    while current is not None:
        out.append(current)
        current = schema["classes"][current].get("parent")
    return out


def attributes(schema: dict[str, Any], cls: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in reversed(lineage(schema, cls)):
        out.update(schema["classes"][name].get("attributes") or {})
    return out


def inherited(schema: dict[str, Any], cls: str, key: str) -> Any:
    for name in lineage(schema, cls):
        if key in schema["classes"][name]:
            return schema["classes"][name][key]
    return None


def is_a(schema: dict[str, Any], cls: str, ancestor: str) -> bool:
    return ancestor in lineage(schema, cls)


def check_value(kind: str, spec: dict[str, Any], value: Any) -> str | None:
    """None when ``value`` fits the attribute spec, else what is wrong."""
    if kind.startswith("list["):
        if not isinstance(value, list) or not value:
            return "expected a non-empty YAML list"
        for item in value:
            problem = check_value(kind[5:-1], {}, item)
            if problem:
                return problem
        return None
    ok: bool
    if kind == "string":
        ok = isinstance(value, str) and value != ""
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "datetime":
        ok = isinstance(value, str) and bool(DATETIME_RE.match(value))
    elif kind == "date":
        ok = isinstance(value, str) and bool(DATE_RE.match(value))
    elif kind == "ip":
        try:
            ok = isinstance(value, str) and bool(ipaddress.ip_address(value))
        except ValueError:
            ok = False
    elif kind == "cidr":
        try:
            ok = isinstance(value, str) and bool(ipaddress.ip_network(value, strict=True))
        except ValueError:
            ok = False
    elif kind == "mac":
        ok = isinstance(value, str) and bool(MAC_RE.match(value))
    elif kind == "dict":
        ok = isinstance(value, dict)
    else:
        return f"unknown type {kind}"
    if not ok:
        return f"{value!r} is not a valid {kind}"
    if "enum" in spec and value not in spec["enum"]:
        return f"{value!r} not in {spec['enum']}"
    if "min" in spec and value < spec["min"]:
        return f"{value!r} below min {spec['min']}"
    if "max" in spec and value > spec["max"]:
        return f"{value!r} above max {spec['max']}"
    return None


def by_ref(estate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {ci["ref"]: ci for ci in estate["cis"]}


def test_batch_header(estate: dict[str, Any]) -> None:
    assert set(estate) == {"source", "scope", "complete", "cis", "relationships"}
    assert estate["source"] == "manual"
    assert estate["scope"] == "sample-estate"
    assert estate["complete"] is True


def test_size(estate: dict[str, Any]) -> None:
    assert 280 <= len(estate["cis"]) <= 330


def test_refs_unique_and_endpoints_exist(estate: dict[str, Any]) -> None:
    refs = Counter(ci["ref"] for ci in estate["cis"])
    assert [r for r, n in refs.items() if n > 1] == []
    for rel in estate["relationships"]:
        assert set(rel) <= {"type", "from", "to", "attributes"}, rel
        for end in (rel["from"], rel["to"]):
            assert isinstance(end, str) and end in refs, f"{rel}: unknown ref {end}"


def test_no_duplicate_relationships(estate: dict[str, Any]) -> None:
    rels = Counter((r["type"], r["from"], r["to"]) for r in estate["relationships"])
    assert [r for r, n in rels.items() if n > 1] == []


def test_classes_exist_and_are_concrete(estate: dict[str, Any], schema: dict[str, Any]) -> None:
    for ci in estate["cis"]:
        cls = ci["class"]
        assert cls in schema["classes"], f"{ci['ref']}: unknown class {cls}"
        assert not schema["classes"][cls].get("abstract"), f"{ci['ref']}: class {cls} is abstract"


def test_attributes_valid(estate: dict[str, Any], schema: dict[str, Any]) -> None:
    problems = []
    for ci in estate["cis"]:
        specs = attributes(schema, ci["class"])
        for key, value in ci.items():
            if key in ("ref", "class"):
                continue
            if key not in specs:
                problems.append(f"{ci['ref']}: {ci['class']} has no attribute {key}")
                continue
            problem = check_value(specs[key]["type"], specs[key], value)
            if problem:
                problems.append(f"{ci['ref']}.{key}: {problem}")
        for key, spec in specs.items():
            if spec.get("required") and ci.get(key) is None:
                problems.append(f"{ci['ref']}: required attribute {key} missing")
    assert problems == []


def test_names_unique_per_class(estate: dict[str, Any], schema: dict[str, Any]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for ci in estate["cis"]:
        name = ci.get("name")
        for candidate in inherited(schema, ci["class"], "name_from") or []:
            name = name or ci.get(candidate)
        fmt = inherited(schema, ci["class"], "name_format")
        if not name and fmt:
            name = fmt.format(**ci)
        assert name, f"{ci['ref']} has no name"
        key = (ci["class"], str(name))
        assert key not in seen, f"{ci['ref']} and {seen[key]} are both {key}"
        seen[key] = ci["ref"]


def test_identity_keys_unique_per_domain(estate: dict[str, Any], schema: dict[str, Any]) -> None:
    """No two CIs share an identity key, so the batch never merges or conflicts with itself."""
    owner: dict[str, str] = {}
    for ci in estate["cis"]:
        cls = ci["class"]
        domain = inherited(schema, cls, "identity_domain") or next(
            c for c in lineage(schema, cls) if "identity" in schema["classes"][c]
        )
        specs = attributes(schema, cls)
        keys = inherited(schema, cls, "identity") or []
        assert keys, f"{cls} has no identity"
        n_keys = 0
        for key in keys:
            values = [ci.get(a, specs[a].get("default")) for a in key]
            if any(v is None or v == [] for v in values):
                continue
            lists = [v if isinstance(v, list) else [v] for v in values]
            for combo in itertools.product(*lists):
                k = f"{domain}:{'+'.join(key)}=" + "|".join(str(v).lower() for v in combo)
                assert k not in owner, f"{ci['ref']} and {owner[k]} share identity key {k}"
                owner[k] = ci["ref"]
                n_keys += 1
        assert n_keys, f"{ci['ref']} has no identity key"


def test_relationship_types_and_endpoint_classes(estate: dict[str, Any], schema: dict[str, Any]) -> None:
    cis = by_ref(estate)
    for rel in estate["relationships"]:
        rtype = schema["relationships"].get(rel["type"])
        assert rtype is not None, f"unknown relationship type {rel['type']}"
        assert rel["from"] != rel["to"], rel
        for side, end in (("from", rel["from"]), ("to", rel["to"])):
            allowed = rtype.get(side)
            if allowed:
                cls = cis[end]["class"]
                assert any(is_a(schema, cls, a) for a in allowed), f"{rel}: {side} {cls} not in {allowed}"


def test_impact_graph_is_acyclic(estate: dict[str, Any], schema: dict[str, Any]) -> None:
    graph: dict[str, list[str]] = defaultdict(list)
    for rel in estate["relationships"]:
        if schema["relationships"][rel["type"]]["impact"] not in IMPACT_TYPES_EXCLUDED:
            graph[rel["from"]].append(rel["to"])
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                raise AssertionError("cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [])


def test_services(estate: dict[str, Any]) -> None:
    services = {ci["ref"]: ci for ci in estate["cis"] if ci["class"] == "Service"}
    assert len(services) == 8
    assert {s["tier"] for s in services.values()} == {1, 2, 3, 4}
    assert {s["service_type"] for s in services.values()} == {"business", "technical"}
    cis = by_ref(estate)
    for ref in services:
        out = [r for r in estate["relationships"] if r["from"] == ref]
        for rtype in ("SERVICE_OWNER", "CHANGE_APPROVER"):
            targets = [r["to"] for r in out if r["type"] == rtype]
            assert targets, f"{ref} has no {rtype}"
            assert all(cis[t]["class"] in ("Person", "Team") for t in targets)
        assert any(r["type"] == "DEPENDS_ON" for r in out), f"{ref} depends on nothing"


def test_redundancy_groups(estate: dict[str, Any]) -> None:
    cis = by_ref(estate)
    members: dict[str, list[str]] = defaultdict(list)
    for rel in estate["relationships"]:
        if rel["type"] == "MEMBER_OF":
            assert cis[rel["to"]]["class"] == "Cluster", rel
            members[rel["to"]].append(rel["from"])
    for ref, ci in cis.items():
        if ci["class"] != "Cluster":
            continue
        assert len(members[ref]) >= 2, f"{ref} has {len(members[ref])} members"
        assert ("quorum" in ci) != ("quorum_percent" in ci), f"{ref}: needs one of quorum, quorum_percent"
        assert ci.get("quorum", 1) <= len(members[ref])
    types = Counter(ci["cluster_type"] for ci in cis.values() if ci["class"] == "Cluster")
    assert set(types) == {"pool", "ha_pair", "replica_set", "redundant_links", "cluster"}
    roles = {ci["role"] for ci in cis.values() if ci["class"] == "Database"}
    assert {"primary", "replica", "standalone"} <= roles


def test_expiry_dates(estate: dict[str, Any]) -> None:
    expiries = [ci["not_after"][:10] for ci in estate["cis"] if ci["class"] == "Certificate"]
    expiries += [ci["expires"] for ci in estate["cis"] if ci["class"] == "License"]
    expired = [d for d in expiries if d < TODAY]
    assert len(expired) == 2
    assert all("2026-12-01" <= d <= "2027-11-30" for d in expiries if d not in expired)
    for ci in estate["cis"]:
        if ci["class"] == "Certificate":
            assert ci["not_before"] < ci["not_after"]


def test_covers_the_schema(estate: dict[str, Any], schema: dict[str, Any]) -> None:
    """The sample exercises every relationship type and the main classes."""
    used = {r["type"] for r in estate["relationships"]}
    cloud_only = {"IN_NETWORK", "SECURED_BY"}  # the sample has no cloud: tests/integration/aws exercises them
    assert used == set(schema["relationships"]) - cloud_only
    classes = {ci["class"] for ci in estate["cis"]}
    assert {"Switch", "Router", "Firewall", "LoadBalancer", "Server", "VirtualMachine", "Interface",
            "IPAddress", "Subnet", "Cluster", "Database", "Application", "Service", "Certificate", "License",
            "SoftwareInstall", "Location", "Person", "Team"} <= classes
    assert any("maintenance_window" in ci for ci in estate["cis"])


def test_yaml_is_up_to_date_with_generator() -> None:
    generator = runpy.run_path(str(GENERATOR), run_name="make_sample_estate")
    assert generator["render"](generator["build"]()) == ESTATE.read_text(encoding="utf-8"), (
        "cmdb/sample/estate.yaml is stale: run scripts/make_sample_estate.py"
    )
