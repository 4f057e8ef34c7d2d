"""A running ``cmdb serve`` follows ``cmdb schema add`` without a restart (``api.schema_watch``), on both stores.

The session's real server (``live_sqlite`` / ``live_neo4j``) refuses a batch of a class its store does not
define; ``cmdb schema add`` in another process adds the class and a relationship type that carries impact;
within a poll or two (on a quiet machine) the same batch is accepted and an incident on the new CI reaches
the service that depends on it through the new type (the warm impact index was rebuilt with the new schema).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import REPO, LiveServer

V1 = "/api/v1"
# The server checks the store's extensions once a second: a quiet machine follows within a poll or two; a
# busy CI machine may take many. What is checked is that it follows without a restart, not how fast.
WITHIN_SECONDS = 60.0


def _until(deadline: float, attempt: Any) -> httpx.Response:
    while True:
        r: httpx.Response = attempt()
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def follow_schema(server: LiveServer, tmp: Path, env: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    cls, rtype = f"PowerFeed{tag}", f"POWERED_BY_{tag.upper()}"
    ext = tmp / f"power-{tag}.yaml"
    ext.write_text(f"classes:\n  {cls}: {{parent: Device, attributes: {{circuit: {{type: string}}}}}}\n"
                   f"relationships:\n  {rtype}: {{impact: to_source, description: A draws power from B}}\n",
                   encoding="utf-8")
    feed, service = f"PF-{tag}", f"svc-{tag}"
    doc = {"source": "import:live-schema",
           "cis": [{"ref": "f", "class": cls, "serial_number": feed, "circuit": "A1"},
                   {"ref": "s", "class": "Service", "name": service, "service_type": "business", "tier": 1}],
           "relationships": [{"type": rtype, "from": "s", "to": "f"}]}
    with server.client() as c:
        refused = c.post(f"{V1}/batches", json=doc)
        assert refused.status_code == 422 and cls in refused.json()["detail"], refused.text
        added = subprocess.run([sys.executable, "-m", "product.cli", "--store", server.store_url, "schema", "add",
                                str(ext)], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True,
                               timeout=120)
        assert added.returncode == 0, added.stderr
        t0 = time.monotonic()
        accepted = _until(t0 + WITHIN_SECONDS, lambda: c.post(f"{V1}/batches", json=doc))
        took = time.monotonic() - t0
        assert accepted.status_code == 200, f"{accepted.status_code} after {took:.1f} s: {accepted.text}"
        assert accepted.json()["created"] == 2 and accepted.json()["rels_created"] == 1
        assert c.get(f"{V1}/cis/{feed}").json()["class"] == cls

        def incident() -> httpx.Response:
            r = c.post(f"{V1}/impact/incident", json={"cis": [feed]}, headers={"Cache-Control": "no-cache"})
            hit = r.status_code == 200 and service in {s["name"] for s in r.json()["services"]}
            return r if hit else httpx.Response(409, text=r.text)

        reached = _until(time.monotonic() + WITHIN_SECONDS, incident)
        assert reached.status_code == 200, f"the new type's impact did not reach {service}: {reached.text[:500]}"


def test_a_running_server_follows_schema_add_on_sqlite(live_sqlite: LiveServer, tmp_path: Path) -> None:
    follow_schema(live_sqlite, tmp_path, {})


@pytest.mark.neo4j
def test_a_running_server_follows_schema_add_on_neo4j(live_neo4j: LiveServer, neo4j_server: Any,
                                                       tmp_path: Path) -> None:
    follow_schema(live_neo4j, tmp_path, {"CMDB_NEO4J_PASSWORD": neo4j_server.password})
