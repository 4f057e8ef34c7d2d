"""Transformed records -> Batches: one per scope, plus one per scope for the links that cross scopes.

A scope's batch holds its resources and the links between them; it is ``complete`` only when every
call of the scope succeeded. Links whose far end another scope found (a target group's instances, a
listener's ACM certificate, a record's load balancer) wait for the end of the run: ``link_batches``
writes them, with identity references on both ends, once every scope's batch is in the store. A link
batch is complete only when every scope of its account was, so a denied scope never ages a link.
Both kinds go through the shared ``discovery.observations.to_batch`` (numbering, refs, the MAC rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cmdb.batch import Batch
from discovery.aws.records import Link, Resource, ScopeContext, Transformed
from discovery.observations import Fact, Identity, to_batch

SOURCE = "aws"


def scope_batch(out: Transformed, ctx: ScopeContext, complete: bool) -> Batch:
    return to_batch(SOURCE, ctx.scope, complete, scope_facts(out))


def scope_facts(out: Transformed) -> list[Fact]:
    """A scope's resources and the links between them (the others wait for ``link_batches``)."""
    return [*out.resources, *local_links(out)]


def local_links(out: Transformed) -> list[Link]:
    return [link for link in out.links if out.has(link.src) and out.has(link.dst)]


@dataclass
class ScopeView:
    """What one scope of the run produced, for the run-level link batches."""

    ctx: ScopeContext
    out: Transformed
    complete: bool
    written: bool  # its batch reached the store (a rejected batch's resources cannot be linked)


def identity(res: Resource) -> Identity:
    return Identity(res.cls, res.key)


def link_batches(views: Iterable[ScopeView], incomplete_accounts: Iterable[str] = ()) -> list[Batch]:
    views = list(views)
    failed = set(incomplete_accounts)
    known: dict[str, dict[str, Resource]] = {}  # account -> ref -> resource written this run
    aliases: dict[str, dict[str, set[str]]] = {}
    account_complete: dict[str, bool] = {}
    for v in views:
        acc = v.ctx.account
        account_complete[acc] = account_complete.get(acc, acc not in failed) and v.complete and v.written
        if not v.written:
            continue
        refs = known.setdefault(acc, {})
        for res in v.out.resources:
            refs.setdefault(res.ref, res)
        for name, targets in v.out.aliases.items():
            aliases.setdefault(acc, {}).setdefault(name, set()).update(targets)
    batches = []
    for v in views:
        if not v.written:
            continue
        acc = v.ctx.account
        complete = account_complete[acc]
        facts: list[Fact] = []
        refs = known.get(acc, {})
        for link in v.out.links:
            if v.out.has(link.src) and v.out.has(link.dst):
                continue
            src = _resolve(link.src, refs, aliases.get(acc, {}))
            dst = _resolve(link.dst, refs, aliases.get(acc, {}))
            if src is None or dst is None:
                continue  # the far end was not found (another account, gone, or its scope failed)
            facts.append(Link(link.type, identity(src), identity(dst), link.attrs))
        if facts or complete:
            batches.append(to_batch(SOURCE, f"{v.ctx.scope}:links", complete, facts))
    return batches


def _resolve(ref: str | Identity, refs: Mapping[str, Resource], aliases: Mapping[str, set[str]]) -> Resource | None:
    if isinstance(ref, Identity):
        return None
    if ref in refs:
        return refs[ref]
    targets = aliases.get(ref.lower())
    if targets and len(targets) == 1:  # an address two VPCs share names nothing for sure
        return refs.get(next(iter(targets)))
    return None
