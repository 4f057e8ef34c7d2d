"""What the app holds while it runs: the store, schema and settings, the warm impact index, the job runner, metrics."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from api.answer_cache import AnswerCache
from api.impact_index import WarmImpactIndex
from api.jobs import DEFAULT_STALE_SECONDS, JobRunner
from api.metrics import ApiMetrics
from cmdb.model import Schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class ApiSettings:
    max_body_bytes: int = 64 * 1024 * 1024
    impact_poll_seconds: float = 1.0
    schema_poll_seconds: float = 1.0  # how often the store's schema extensions are checked (0: never)
    page_limit: int = 1000  # the largest page a list answers
    warm_impact: bool = True
    allowed_networks: list[IPNet] | None = None  # where POST /runs may scan (None: anywhere)
    max_run_targets: int = 4096
    mappings_dir: Path | None = None  # the mappings POST /imports may name (CMDB_MAPPINGS_DIR); None: no imports
    job_stale_seconds: float = DEFAULT_STALE_SECONDS  # a running job without a heartbeat this long: abandoned


@dataclass
class ApiState:
    store: GraphStore
    schema: Schema
    config: ReconcileConfig
    settings: ApiSettings
    metrics: ApiMetrics
    impact: WarmImpactIndex
    jobs: JobRunner  # background runs and imports; their status is in the store
    answers: AnswerCache = field(default_factory=AnswerCache)

    @property
    def inline_reads(self) -> bool:
        """Store reads are quick local calls (SQLite): run them on the event loop instead of a thread."""
        return self.store.url.startswith("sqlite")


async def api_state(request: Request) -> ApiState:
    """A dependency; ``async`` because it only reads app state (a sync one costs a thread hop per request)."""
    state: ApiState = request.app.state.api
    return state
