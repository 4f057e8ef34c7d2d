"""``cmdb serve``: the HTTP API under uvicorn.

Each worker process builds its own app (``api.app:app_from_env``, uvicorn's factory mode) with its
own store connection and warm impact index; the store URL travels in ``CMDB_STORE``. The port is
``--port``, else ``CMDB_PORT``, else 8000 (the README's example leaves it to the variable, so its test
serves on a free port). With several
workers the Prometheus counters are shared through ``PROMETHEUS_MULTIPROC_DIR`` (a temporary
directory unless set).
"""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

import typer

from cmdb.errors import BadInputError

# uvicorn's supervisor pings each worker and kills one that does not answer within this many seconds
# (its default, 5, killed workers of a busy machine while they were still starting: a spawned worker
# imports the whole app first; with every worker killed in turn, nothing accepted connections for
# tens of seconds). A worker that is really hung is still replaced, a minute later.
WORKER_HEALTHCHECK_SECONDS = 60


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", envvar="CMDB_PORT")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
    scan_networks: Annotated[str | None, typer.Option(
        help="Comma-separated networks that POST /runs may scan (default: any).")] = None,
) -> None:
    """Serve the HTTP API (docs at /api/v1/docs) on the store named by --store / CMDB_STORE."""
    import uvicorn

    if workers < 1:
        raise BadInputError(f"--workers must be at least 1, not {workers}")
    if not 0 < port < 65536:
        raise BadInputError(f"--port {port}: use 1-65535")
    store = ctx.find_root().params.get("store")
    if store:
        os.environ["CMDB_STORE"] = store
    if scan_networks:
        os.environ["CMDB_API_SCAN_NETWORKS"] = scan_networks
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cmdb-metrics-")
    uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level=log_level,
                proxy_headers=False, server_header=False, timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)


def register(app: typer.Typer) -> None:
    """Adds ``cmdb serve`` to the root command."""
    app.command("serve")(serve)
