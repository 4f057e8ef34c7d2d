"""The impact graph as it was at a past time, replayed from history (``--as-of``).

Every change to a CI or relationship is an event, so folding the events up to ``at`` gives the CIs
(class, attributes, status) and relationships of that moment; they are loaded into a MemoryIndex
so the same engine answers "what would this failure have hit then".
"""

from __future__ import annotations

from typing import Any

from cmdb.errors import BadInputError
from cmdb.model import Schema
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore
from impact.index import MemoryIndex
from impact.source import NodeInfo


def index_as_of(store: GraphStore, at: str, schema: Schema | None = None) -> MemoryIndex:
    """A MemoryIndex of the graph at ``at`` (ISO time); retired CIs and relationships are left out."""
    schema = schema or store_schema(store)
    cis: dict[str, dict[str, Any]] = {}
    rels: dict[str, dict[str, Any]] = {}
    for e in store.events(until=at):
        if e.rel_id is not None:
            if e.kind == "rel.created":
                rels[e.rel_id] = {"type": e.attr, "src": e.ci_id, "dst": e.peer_id, "status": "active"}
            elif e.kind == "rel.status" and e.rel_id in rels:
                rels[e.rel_id]["status"] = e.new
            continue
        if e.ci_id is None:
            continue
        if e.kind == "ci.created" and isinstance(e.new, dict):
            cis[e.ci_id] = {"class": e.new["class"], "attrs": dict(e.new["attrs"]), "status": "active"}
        elif e.ci_id not in cis:
            continue
        elif e.kind == "ci.attr" and e.attr is not None:
            if e.new is None:
                cis[e.ci_id]["attrs"].pop(e.attr, None)
            else:
                cis[e.ci_id]["attrs"][e.attr] = e.new
        elif e.kind == "ci.class":
            cis[e.ci_id]["class"] = e.new
        elif e.kind == "ci.status":
            cis[e.ci_id]["status"] = e.new
    if not cis:
        raise BadInputError(f"the store has no history up to {at}; pick a later --as-of time")
    live = {i for i, c in cis.items() if c["status"] != "retired"}
    nodes = []
    for i in live:
        c = cis[i]
        try:
            name = schema.display_name(c["class"], c["attrs"]) or i
        except BadInputError:
            name = i
        tier = c["attrs"].get("tier") if schema.is_a(c["class"], "Service") else None
        nodes.append(NodeInfo(i, name, c["class"], int(tier) if isinstance(tier, int | float) else None,
                              c["attrs"]))
    edges = [(r["type"], r["src"], r["dst"]) for r in rels.values()
             if r["status"] != "retired" and r["src"] in live and r["dst"] in live]
    return MemoryIndex.from_edges(edges, nodes, schema)
