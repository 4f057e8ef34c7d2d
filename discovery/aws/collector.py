"""``AwsCollector``: one runner target per scope ``aws:<account>:<region>:<service>``.

``plan`` resolves each account (one STS call) and its regions (the list given, or every enabled
region), and names the targets. ``read`` makes one scope's calls in a worker thread (I/O only; its
reading, JSON, is what ``--record`` writes); when some calls failed it raises ``PartialReading`` with
what arrived and the worst failure, whose outcome (denied, throttled, error) comes from ``AWS_OUTCOMES``.
``transform`` is pure: the scope's resources and local links as observations, complete only when every
call succeeded, so a partial batch refreshes what it saw and ages nothing. ``finish`` writes the links
that cross scopes (``to_batch.link_batches``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cmdb.batch import Batch
from discovery.aws.calls import AWS_OUTCOMES, AccountSpec, AwsConnection, ScopeReader, classify, partial_detail
from discovery.aws.records import ScopeContext, TagMap
from discovery.aws.services import SERVICES
from discovery.aws.to_batch import SOURCE, ScopeView, link_batches, scope_facts
from discovery.collector import Observed, OutcomeTable, PartialReading
from discovery.outcomes import Outcome, TargetError, TargetResult

GLOBAL = "global"


@dataclass
class AwsPlan:
    """The targets of a run and the account behind each account number (or the failure of an account)."""

    targets: list[str] = field(default_factory=list)
    accounts: dict[str, AccountSpec] = field(default_factory=dict)
    failures: dict[str, tuple[Outcome, str]] = field(default_factory=dict)  # target -> why it cannot run


def plan(conn: AwsConnection, accounts: Sequence[AccountSpec], regions: Sequence[str] | None,
         services: Sequence[str]) -> AwsPlan:
    """Targets for ``accounts`` x ``regions`` (None: every enabled region) x ``services``."""
    out = AwsPlan()
    for account in accounts:
        try:
            number = conn.account_id(account)
            found = list(regions) if regions else conn.enabled_regions(account)
        except Exception as exc:
            outcome, message = classify(exc)
            target = f"aws:{account.label}:*:*"
            out.targets.append(target)
            out.failures[target] = (outcome, f"account {account.label}: {message}")
            continue
        out.accounts[number] = account
        for service in services:
            spec = SERVICES[service]
            for region in [GLOBAL] if spec.is_global else found:
                target = f"aws:{number}:{region}:{service}"
                if target not in out.targets:
                    out.targets.append(target)
    return out


class AwsCollector:
    method = "aws"
    source = SOURCE
    profile_attr: str | None = None
    outcomes: OutcomeTable = AWS_OUTCOMES

    def __init__(self, conn: AwsConnection, aws_plan: AwsPlan, tag_map: TagMap | None = None) -> None:
        self.conn = conn
        self.plan = aws_plan
        self.tag_map = tag_map or TagMap()

    async def read(self, target: str, remembered_profile: str | None) -> dict[str, Any]:
        """The scope's answers by call name, and the calls that failed."""
        if target in self.plan.failures:
            outcome, message = self.plan.failures[target]
            raise TargetError(outcome, message)
        _, number, region, service = target.split(":", 3)
        account = self.plan.accounts[number]
        reader = ScopeReader(lambda svc: self.conn.client(account, svc, region))
        await asyncio.to_thread(SERVICES[service].get, reader)
        raw = {"account": number, "region": region, "service": service, "profile": account.label,
               "calls": reader.raw, "failures": [f.as_json() for f in reader.failures]}
        worst = reader.worst()
        if worst is not None:
            raise PartialReading(raw, worst.error)
        return raw

    def transform(self, raw: dict[str, Any]) -> Observed:
        ctx = ScopeContext(raw["account"], raw["region"], raw["service"])
        out = SERVICES[ctx.service].transform(raw["calls"], ctx, self.tag_map)
        failures = raw.get("failures") or []
        complete = not failures
        detail = f"{len(out.resources)} resources" if complete else partial_detail(failures)
        return Observed(scope_facts(out), ctx.scope, complete, detail, raw.get("profile"),
                        keep={"view": ScopeView(ctx, out, complete, written=True)})

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        """The links across scopes, once every scope's resources are in the store."""
        views, failed = [], set()
        for r in results:
            view = r.facts.get("view")
            if isinstance(view, ScopeView):
                view.written = r.outcome != Outcome.REJECTED
                views.append(view)
            if r.outcome != Outcome.OK:  # with or without a view: that account's links are not a full look
                failed.add(r.target.split(":")[1])
        return link_batches(views, incomplete_accounts=failed)
