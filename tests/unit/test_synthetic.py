"""The synthetic estate generator: deterministic, well-formed, shaped like a real estate."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.synthetic import synthetic_batches, synthetic_counts, synthetic_relationship_count

N = 10_000
SCHEMA = Path(__file__).resolve().parents[2] / "cmdb" / "schema" / "core.yaml"
ALLOWED = {"Service", "Application", "Database", "Server", "VirtualMachine", "Switch", "Router", "Cluster",
           "Team", "Person", "Location"}
DEVICES = {"Server", "VirtualMachine", "Switch", "Router"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    with SCHEMA.open(encoding="utf-8") as f:
        doc: dict[str, Any] = yaml.safe_load(f)
    return doc


@pytest.fixture(scope="module")
def batches() -> list[dict[str, Any]]:
    return list(synthetic_batches(N))


def digest(batches: Any) -> str:
    h = hashlib.sha256()
    for batch in batches:
        h.update(json.dumps(batch, sort_keys=True).encode())
    return h.hexdigest()


def ref_key(ref: dict[str, Any]) -> tuple[str, str, str]:
    """(class, identity attribute, value) of an identity reference; exactly one attribute."""
    attrs = [(k, v) for k, v in ref.items() if k != "class"]
    assert len(attrs) == 1, ref
    return ref["class"], attrs[0][0], attrs[0][1]


def ci_keys(ci: dict[str, Any]) -> list[tuple[str, str, str]]:
    cls = ci["class"]
    if cls in DEVICES:
        return [(cls, "fqdn", ci["fqdn"])]
    if cls == "Person":
        return [(cls, "email", ci["email"])]
    return [(cls, "name", ci["name"])]


def test_same_seed_same_output(batches: list[dict[str, Any]]) -> None:
    assert digest(batches) == digest(synthetic_batches(N))
    assert digest(batches) != digest(synthetic_batches(N, seed=8))


def test_batches_are_native_and_ordered(batches: list[dict[str, Any]]) -> None:
    kinds = []
    for batch in batches:
        assert batch["source"] == "import" and batch["scope"] == "synthetic" and batch["complete"] is False
        assert ("cis" in batch) != ("relationships" in batch)
        items = batch.get("cis") or batch["relationships"]
        assert 0 < len(items) <= 5000
        kinds.append("cis" if "cis" in batch else "relationships")
    assert kinds == sorted(kinds)  # every CI batch before the first relationship batch
    custom = list(synthetic_batches(500, batch_size=64, source="bench", scope="s1"))
    assert all(len(b.get("cis") or b["relationships"]) <= 64 for b in custom)
    assert {(b["source"], b["scope"]) for b in custom} == {("bench", "s1")}


def test_cis(batches: list[dict[str, Any]], schema: dict[str, Any]) -> None:
    cis = [ci for b in batches for ci in b.get("cis", [])]
    assert len(cis) == N
    refs = Counter(ci["ref"] for ci in cis)
    assert max(refs.values()) == 1
    counts = Counter(ci["class"] for ci in cis)
    assert set(counts) == ALLOWED
    assert dict(counts) == synthetic_counts(N)
    # A real estate's proportions.
    assert counts["Service"] < counts["Application"] < counts["Server"] + counts["VirtualMachine"]
    assert counts["Router"] < counts["Switch"] < counts["Server"] < counts["VirtualMachine"]
    assert counts["Team"] < counts["Person"]
    keys = Counter(k for ci in cis for k in ci_keys(ci))
    assert max(keys.values()) == 1
    ips = Counter(ip for ci in cis for ip in ci.get("ip_addresses", []))
    assert max(ips.values()) == 1
    for ci in cis:  # attributes exist on the class (or a parent), enums hold
        specs: dict[str, Any] = {}
        cls: str | None = ci["class"]
        while cls:
            specs = {**(schema["classes"][cls].get("attributes") or {}), **specs}
            cls = schema["classes"][cls].get("parent")
        for key, value in ci.items():
            if key not in ("ref", "class"):
                assert key in specs, f"{ci['class']}.{key}"
                assert value in specs[key].get("enum", [value]), f"{ci['ref']}.{key}={value}"
        assert all(ci.get(k) is not None for k, s in specs.items() if s.get("required")), ci


def test_relationships_resolve(batches: list[dict[str, Any]], schema: dict[str, Any]) -> None:
    known = {k for b in batches for ci in b.get("cis", []) for k in ci_keys(ci)}
    rels = [r for b in batches for r in b.get("relationships", [])]
    assert len(rels) == synthetic_relationship_count(N) == 3 * N
    seen = set()
    for rel in rels:
        assert rel["type"] in schema["relationships"]
        src, dst = ref_key(rel["from"]), ref_key(rel["to"])
        assert src in known, rel
        assert dst in known, rel
        assert src != dst, rel
        edge = (rel["type"], src, dst)
        assert edge not in seen, f"duplicate {edge}"
        seen.add(edge)
    used = Counter(r["type"] for r in rels)
    for rtype in ("DEPENDS_ON", "RUNS_ON", "HOSTED_ON", "CONNECTED_TO", "MEMBER_OF", "LOCATED_IN", "OWNED_BY",
                  "SUPPORTED_BY", "SERVICE_OWNER", "CHANGE_APPROVER", "SUBSCRIBED_TO"):
        assert used[rtype] > 0, rtype


@pytest.mark.parametrize("rels_per_ci", [1.0, 2.0, 3.5])
def test_relationship_total_follows_rels_per_ci(rels_per_ci: float) -> None:
    total = sum(len(b.get("relationships", [])) for b in synthetic_batches(2000, rels_per_ci=rels_per_ci))
    assert total == synthetic_relationship_count(2000, rels_per_ci) == round(rels_per_ci * 2000)


def test_impact_graph_is_a_dag_with_a_large_core_blast_radius(
    batches: list[dict[str, Any]], schema: dict[str, Any]
) -> None:
    # failure of B reaches A for to_source edges (A -> B), of A reaches B for to_target edges.
    hurts: dict[tuple[str, str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for b in batches:
        for rel in b.get("relationships", []):
            impact = schema["relationships"][rel["type"]]["impact"]
            src, dst = ref_key(rel["from"]), ref_key(rel["to"])
            if impact == "to_source":
                hurts[dst].append(src)
            elif impact == "to_target":
                hurts[src].append(dst)
            else:
                assert impact == "none", rel["type"]

    # Acyclic: Kahn's algorithm consumes every node.
    indegree: Counter[tuple[str, str, str]] = Counter(n for targets in hurts.values() for n in targets)
    nodes = set(hurts) | set(indegree)
    ready = [n for n in nodes if indegree[n] == 0]
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for nxt in hurts.get(node, []):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    assert done == len(nodes), "the impact graph has a cycle"

    def blast_radius(start: tuple[str, str, str]) -> int:
        seen = {start}
        stack = [start]
        while stack:
            for nxt in hurts.get(stack.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return len(seen) - 1

    core = ("Switch", "fqdn", "sw-0000000.syn.example")
    assert blast_radius(core) > N // 2
    services = {n for n in nodes if n[0] == "Service"}
    reached_services = 0
    stack, seen = [core], {core}
    while stack:
        for nxt in hurts.get(stack.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                reached_services += nxt in services
                stack.append(nxt)
    assert reached_services > len(services) // 2
    last_vm = ("VirtualMachine", "fqdn", f"vm-{synthetic_counts(N)['VirtualMachine'] - 1:07d}.syn.example")
    assert blast_radius(last_vm) < 50


def test_too_small() -> None:
    with pytest.raises(ValueError):
        next(synthetic_batches(10))
