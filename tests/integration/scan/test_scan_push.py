"""A remote collector: ``cmdb scan --push URL --token-file F`` against a real ``cmdb serve`` (uvicorn) on
loopback lands the same CIs and relationships as a local scan of the same listeners.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from cmdb.store.base import GraphStore, SearchQuery
from cmdb.store.sqlite import SqliteStore
from cmdb.tokens import create_token, key_file_for, load_server_key
from tests.api.conftest import start_server, stop_server
from tests.integration.scan.conftest import ScanLab
from tests.integration.scan.test_scan_cli import scan


def graph(store: GraphStore) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """CIs as (class, name, attributes) and relationships as (type, from name, to name, attributes)."""
    cis = store.search(SearchQuery(limit=10000)).items
    names = {c.id: (c.cls, c.name) for c in cis}
    ci_set = {(c.cls, c.name, tuple(sorted((k, str(v)) for k, v in c.attrs.items()))) for c in cis}
    rels = {(r.type, names[r.src], names[r.dst], tuple(sorted((k, str(v)) for k, v in r.attrs.items())))
            for r in store.relationships(limit=100000)}
    return ci_set, rels


def test_scan_push_lands_the_same_cis_as_a_local_scan(scan_lab: ScanLab, tmp_path: Path) -> None:
    lab = scan_lab
    local_url = f"sqlite:///{tmp_path / 'local.db'}"
    scan(lab, local_url)

    central = SqliteStore(tmp_path / "central.db")
    token, _ = create_token(central, load_server_key(key_file_for(central.url)), "dmz-collector", "collector",
                            sources=["scan"], scopes=[lab.network])
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    proc, url = start_server(central, {}, log=tmp_path / "server.log")
    try:
        collector_url = f"sqlite:///{tmp_path / 'collector.db'}"  # keeps only the run record
        record = scan(lab, collector_url, "--push", url, "--token-file", str(token_file))
        assert all(o["outcome"] in ("ok", "timeout") for o in record["outcomes"]), record["outcomes"]
        assert sum(o["items"] for o in record["outcomes"]) > 0
        with closing(SqliteStore(tmp_path / "local.db")) as local:
            assert graph(central) == graph(local)
            assert graph(central)[0]
        collector = SqliteStore(tmp_path / "collector.db")
        try:
            assert collector.stats()["cis"] == 0 and collector.discovery_runs()[0].run_id == record["run_id"]
        finally:
            collector.close()
        actors = {e.actor for e in central.events()}
        assert actors == {"dmz-collector"}
        # Pushing the same run again changes nothing (the server sees the same batches).
        again = scan(lab, collector_url, "--push", url, "--token-file", str(token_file))
        assert sum(o["changes"] for o in again["outcomes"]) == 0

        # A token file others may read is refused before anything is sent.
        token_file.chmod(0o644)
        out = subprocess.run([sys.executable, "-m", "product.cli", "scan", lab.addresses[0], "--ports",
                              str(lab.banner_port), "--no-dns", "--store", collector_url, "--push", url,
                              "--token-file", str(token_file)], capture_output=True, text=True, timeout=60,
                             env={**os.environ}, check=False)
        assert out.returncode == 2 and "readable by others" in out.stderr and token not in out.stderr + out.stdout
        token_file.chmod(0o600)
        log_text = (tmp_path / "server.log").read_text(errors="replace")
        assert token not in log_text
    finally:
        stop_server(proc)
        central.close()
