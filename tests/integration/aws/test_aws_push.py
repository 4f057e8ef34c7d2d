"""A remote AWS collector: ``cmdb discover aws --push URL --token-file F`` against a real ``cmdb serve``
(uvicorn) on loopback lands the same CIs and relationships as a local sync of the same moto estate."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Any

from moto_lab import ACCOUNT, Estate, MotoServer

from cmdb.store.sqlite import SqliteStore
from cmdb.tokens import create_token, key_file_for, load_server_key
from tests.api.conftest import start_server, stop_server
from tests.integration.aws.test_cli import cmdb
from tests.integration.scan.test_scan_push import graph

REGIONS = "us-east-1,eu-west-1"


def sync(store_url: str, moto_url: str, *extra: str) -> dict[str, Any]:
    proc = cmdb(store_url, "discover", "aws", "--profile", "estate", "--regions", REGIONS, "--endpoint-url",
                moto_url, "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    record: dict[str, Any] = json.loads(proc.stdout)
    assert {o["outcome"] for o in record["outcomes"]} == {"ok"}, record["outcomes"]
    return record


def test_aws_push_lands_the_same_cis_as_a_local_sync(estate: Estate, moto_server: MotoServer,
                                                      tmp_path: Path) -> None:
    sync(f"sqlite:///{tmp_path / 'local.db'}", moto_server.url)

    central = SqliteStore(tmp_path / "central.db")
    token, _ = create_token(central, load_server_key(key_file_for(central.url)), "cloud-collector", "collector",
                            sources=["aws"])
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    proc, url = start_server(central, {}, log=tmp_path / "server.log")
    try:
        collector_url = f"sqlite:///{tmp_path / 'collector.db'}"  # keeps only the run record
        record = sync(collector_url, moto_server.url, "--push", url, "--token-file", str(token_file))
        assert sum(o["items"] for o in record["outcomes"]) > 0
        with closing(SqliteStore(tmp_path / "local.db")) as local:
            cis, rels = graph(central)
            assert (cis, rels) == graph(local)
        names = {name for _cls, name, _attrs in cis}
        assert {"web-1", "eu-web-1"} <= names and any(cls == "CloudCluster" for cls, _n, _a in cis) and rels
        assert {dict(attrs).get("account_id") for cls, _n, attrs in cis if cls == "CloudInstance"} == {ACCOUNT}
        with closing(SqliteStore(tmp_path / "collector.db")) as collector:
            assert collector.stats()["cis"] == 0 and collector.discovery_runs()[0].run_id == record["run_id"]
        assert {e.actor for e in central.events()} == {"cloud-collector"}
        # The same estate pushed again changes nothing.
        again = sync(collector_url, moto_server.url, "--push", url, "--token-file", str(token_file))
        assert sum(o["changes"] for o in again["outcomes"]) == 0
        assert token not in (tmp_path / "server.log").read_text(errors="replace")
    finally:
        stop_server(proc)
        central.close()
