"""``ScanCollector``: the scan method as the discovery runner sees it (probe -> transform per target).

The prober (and with it the concurrency semaphore, the rate bucket and the DNS threads) is shared
by every target of one run, so ``--concurrency`` and ``--rate`` bound the whole scan, not each
host. The runner's own target concurrency only decides how many targets queue for probes at once
(``target_concurrency``). Scan has no credentials, so ``profile_attr`` is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cmdb.batch import Batch
from cmdb.model import Schema
from discovery.certificates import SystemTrust
from discovery.collector import Observed, OutcomeTable
from discovery.outcomes import TargetResult
from discovery.scan.probe import Prober, ProbeSettings
from discovery.scan.transform import SCAN_OUTCOMES, SOURCE, observe, verdict


class ScanCollector:
    """TCP connect scan with banners, TLS chains and reverse DNS; one instance per run."""

    method = "scan"
    source = SOURCE
    profile_attr: str | None = None
    outcomes: OutcomeTable = SCAN_OUTCOMES

    def __init__(self, settings: ProbeSettings, *, trust: SystemTrust | None = None, schema: Schema | None = None,
                 keep_raw: bool = False) -> None:
        self.settings = settings
        self.prober = Prober(settings, trust)
        self.schema = schema
        self.keep_raw = keep_raw

    def target_concurrency(self, targets: int) -> int:
        """Targets in flight: enough to keep ``concurrency`` probes busy, twice over, at most all."""
        per_target = max(1, len(self.settings.ports))
        return max(1, min(targets, 2 * math.ceil(self.settings.concurrency / per_target)))

    async def read(self, target: str, remembered_profile: str | None) -> dict[str, Any]:
        """The probes' results; a target where no probe got a definite answer raises what that means."""
        raw = await self.prober.probe_target(target)
        verdict(raw)
        return raw

    def transform(self, raw: dict[str, Any]) -> Observed:
        seen = observe(raw, self.schema)
        if self.keep_raw:
            seen.keep["raw"] = raw
        return seen

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        """No run-level batch; the DNS threads are released here."""
        self.prober.close()
        return []
