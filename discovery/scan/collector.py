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
from discovery.outcomes import TargetResult
from discovery.scan.probe import Prober, ProbeSettings
from discovery.scan.transform import transform_scan


class ScanCollector:
    """TCP connect scan with banners, TLS chains and reverse DNS; one instance per run."""

    method = "scan"
    profile_attr: str | None = None

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

    async def collect(self, target: str, remembered_profile: str | None) -> TargetResult:
        raw = await self.prober.probe_target(target)
        reading = transform_scan(raw, self.schema)
        facts: dict[str, Any] = {"complete": reading.complete}
        if self.keep_raw:
            facts["raw"] = raw
        return TargetResult(target, reading.outcome, reading.detail, None, reading.batch, facts)

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        """No run-level batch; the DNS threads are released here."""
        self.prober.close()
        return []
