"""Prometheus metrics of the API: requests and latency per route, ingest counts.

Each app has its own registry (tests build many apps in one process). With several workers
``cmdb serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before they start, and ``/metrics`` then adds up
every worker's files (prometheus-client's multiprocess mode). Open tasks and the outbox backlog
join here with the tasks issue.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmdb.ingest import IngestResult

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        reg = None if self.multiprocess else self.registry
        self.requests = Counter("cmdb_http_requests_total", "HTTP requests answered.",
                                ["method", "route", "status"], registry=reg)
        self.latency = Histogram("cmdb_http_request_duration_seconds", "Time to answer an HTTP request.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=reg)
        self.batches = Counter("cmdb_ingest_batches_total", "Batches ingested through the API.", ["source"],
                               registry=reg)
        self.items = Counter("cmdb_ingest_cis_total", "CIs of ingested batches by what happened to them.",
                             ["source", "outcome"], registry=reg)
        self.impact_refreshes = Counter("cmdb_impact_index_refreshes_total",
                                        "Rebuilds of the warm impact index after writes.", registry=reg)

    def ingested(self, source: str, result: IngestResult) -> None:
        self.batches.labels(source).inc()
        for outcome in ("created", "updated", "unchanged"):
            n = getattr(result, outcome)
            if n:
                self.items.labels(source, outcome).inc(n)

    def exposition(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/cis/{ref}``), or ``unmatched``."""
    ctx = (scope.get("fastapi") or {}).get("effective_route_context")  # FastAPI keeps included routers nested
    path = getattr(ctx, "path", None) or getattr(scope.get("route"), "path", None)
    return str(path) if path else "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (not the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)
