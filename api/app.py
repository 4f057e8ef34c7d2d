"""The app factory: ``create_app(store or URL)`` builds the FastAPI app; its lifespan opens and closes the store.

No import-time globals: every app has its own store, metrics registry, warm impact index and job
runner (``api.state``; a job's status is kept in the store, so any worker answers it). Routers per
resource live in ``api.routes``; errors are problem+json (``api.problems``); the body size limit and
request metrics are plain ASGI middleware.
``app_from_env`` is what ``cmdb serve`` hands uvicorn (``factory=True``), so each worker builds its own.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from api import auth, problems
from api.impact_index import WarmImpactIndex
from api.jobs import JobRunner, stale_seconds_from
from api.limits import BodySizeLimit
from api.metrics import ApiMetrics, MetricsMiddleware
from api.routes import batches, cis, conflicts, health, health_report, impact, imports, jobs, runs, tasks, tokens
from api.routes.relationships import router as relationships_router
from api.schema_watch import SchemaWatch, extension_texts
from api.state import ApiSettings, ApiState
from cmdb.model import Schema
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema
from cmdb.store import open_store
from cmdb.store.base import GraphStore

PREFIX = "/api/v1"
DESCRIPTION = """The CMDB over HTTP: CIs, identity conflicts, impact analysis, discovery runs and batch ingest.

Every error is `application/problem+json` (RFC 9457). Lists page with `limit` and an opaque `cursor`
(`next_cursor` of the previous page). Writes take `Authorization: Bearer <token>`.
"""
log = logging.getLogger("cmdb.api")


def create_app(store: GraphStore | str | None = None, settings: ApiSettings | None = None, *,
               schema: Schema | None = None, config: ReconcileConfig | None = None) -> FastAPI:
    """An app over ``store`` (an open store, which the caller keeps and closes, or a URL the app opens
    at start and closes at shutdown; None: ``CMDB_STORE`` or the default store)."""
    settings = settings or ApiSettings()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = open_store(store) if store is None or isinstance(store, str) else store
        owned = opened is not store
        follow = schema is None and settings.schema_poll_seconds > 0  # a schema given by the caller stays
        seen = extension_texts(opened) if follow else ()
        sch = schema or store_schema(opened)
        warm = WarmImpactIndex(opened, sch, settings.impact_poll_seconds, on_refresh=metrics.impact_refreshes.inc)
        state = ApiState(opened, sch, config or ReconcileConfig.load(), settings, metrics, warm,
                         JobRunner(opened, settings.job_stale_seconds))
        watch = SchemaWatch(state, seen, settings.schema_poll_seconds) if follow else None
        metrics.watch_store(opened)
        app.state.store = opened
        app.state.api = state
        load_key = getattr(auth, "load_token_key", None)  # the token check's server key (api.auth)
        if load_key is not None:
            app.state.token_key = load_key(opened)
        if settings.warm_impact:
            warm.start()
        if watch is not None:
            watch.start()
        try:
            yield
        finally:
            if watch is not None:
                watch.stop()
            warm.stop()
            state.jobs.join(timeout=30)
            auth.close_token_cache(app.state)  # pending last_used writes, while the store is open
            if owned:
                opened.close()

    app = FastAPI(title="cmdb", version="1", description=DESCRIPTION, lifespan=lifespan,
                  openapi_url=f"{PREFIX}/openapi.json", docs_url=f"{PREFIX}/docs", redoc_url=None)
    problems.install(app)
    for module in (cis, conflicts, impact, runs, batches, tokens, tasks, imports, jobs, health_report):
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(relationships_router, prefix=PREFIX)
    app.include_router(health.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _problem_schema(app)
    return app


def _problem_schema(app: FastAPI) -> None:
    """Put the Problem model in the OpenAPI components (the routes' error answers refer to it)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = original()
        comps = doc.setdefault("components", {}).setdefault("schemas", {})
        comps.setdefault("Problem", problems.Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def settings_from_env() -> ApiSettings:
    s = ApiSettings()
    if os.environ.get("CMDB_API_MAX_BODY"):
        s.max_body_bytes = int(os.environ["CMDB_API_MAX_BODY"])
    if os.environ.get("CMDB_JOB_STALE_SECONDS"):
        s.job_stale_seconds = stale_seconds_from(os.environ["CMDB_JOB_STALE_SECONDS"])
    if os.environ.get("CMDB_MAPPINGS_DIR"):
        s.mappings_dir = Path(os.environ["CMDB_MAPPINGS_DIR"])
    nets = os.environ.get("CMDB_API_SCAN_NETWORKS")
    if nets:
        s.allowed_networks = [ipaddress.ip_network(n.strip(), strict=False) for n in nets.split(",") if n.strip()]
    return s


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory``: the store from ``CMDB_STORE``, settings from ``CMDB_API_*``."""
    return create_app(os.environ.get("CMDB_STORE"), settings_from_env())
