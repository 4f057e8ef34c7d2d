"""Prometheus metrics of the API: requests and latency per route, ingest counts.

Each app has its own registry (tests build many apps in one process). With several workers
``cmdb serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before they start, and ``/metrics`` then adds up
every worker's files (prometheus-client's multiprocess mode). Open tasks and the outbox backlog are
gauges read from the store at scrape time (``StoreGauges``), so they hold in any worker count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmdb.ingest import IngestResult
from cmdb.store.tasks import TaskQuery

if TYPE_CHECKING:
    from cmdb.store.base import GraphStore

COUNT_PAGE = 1000
COUNT_CAP = 100_000  # a scrape counts at most this many (the gauge then says "at least")
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

        self.store_gauges: StoreGauges | None = None

    def watch_store(self, store: GraphStore) -> None:
        """Report ``store``'s open tasks and outbox backlog on every scrape."""
        if self.store_gauges is None:
            self.store_gauges = StoreGauges(store)
            self.registry.register(self.store_gauges)

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
            if self.store_gauges is not None:
                registry.register(self.store_gauges)
            return generate_latest(registry)
        return generate_latest(self.registry)


class StoreGauges(Collector):
    """Open (and acknowledged) tasks by kind, and outbox messages by state, read when scraped."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # no read at registration; the families appear on collect

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tasks = GaugeMetricFamily("cmdb_tasks_open", "Tasks open or acknowledged, by kind and state.",
                                  labels=["kind", "state"])
        counts: dict[tuple[str, str], int] = {}
        query = TaskQuery(states=["open", "acknowledged"], limit=COUNT_PAGE)
        while query.offset < COUNT_CAP:
            page = self.store.list_tasks(query)
            for t in page:
                counts[(t.kind, t.state)] = counts.get((t.kind, t.state), 0) + 1
            if len(page) < COUNT_PAGE:
                break
            query.offset += COUNT_PAGE
        for (kind, state), n in sorted(counts.items()):
            tasks.add_metric([kind, state], n)
        yield tasks
        outbox = GaugeMetricFamily("cmdb_outbox_messages", "Outbox messages by state (pending: the backlog).",
                                   labels=["state"])
        for state in ("pending", "dead"):
            outbox.add_metric([state], len(self.store.list_messages(state, COUNT_CAP)))
        yield outbox


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
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # bounded: routes x methods x statuses

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
            key = (scope.get("method", ""), route_template(scope), status)
            children = self._children.get(key)
            if children is None:  # labels() takes a lock and builds the key each time: once per label set
                method, route, _ = key
                children = self._children[key] = (self.metrics.requests.labels(method, route, str(status)),
                                                   self.metrics.latency.labels(method, route))
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
