"""A real scan and a real SNMP run of one address make one CI: the identity acceptance of discovery."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from snmp_agents import SnmpsimAgents

from cmdb.model import default_schema
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.runner import run_discovery
from discovery.scan.collector import ScanCollector
from discovery.scan.probe import ProbeSettings
from tests.integration.snmp.conftest import Profiles
from tests.integration.snmp.test_lab import lab_collector

ADDRESS = "127.0.1.1"  # sw-core-1 of the snmpsim lab


@pytest.fixture()
def ssh_banner() -> Iterator[int]:
    """A TCP listener on the switch's address that greets like an SSH server, as a switch's would."""
    server = socket.create_server((ADDRESS, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-Cisco-1.25\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def test_scanned_host_and_snmp_switch_are_one_ci(profiles: Profiles, lab: SnmpsimAgents, ssh_banner: int,
                                                  tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "merge.db")
    try:
        closed = socket.create_server((ADDRESS, 0))  # bound, not accepting: a port that refuses
        closed_port = closed.getsockname()[1]
        closed.close()
        settings = ProbeSettings(ports=(ssh_banner, closed_port), dns=False, connect_timeout=1.0)
        scanned = asyncio.run(run_discovery(ScanCollector(settings), [ADDRESS], store))
        assert [o["outcome"] for o in scanned.outcomes] == ["ok"]
        devices = default_schema().descendants_concrete("Device")
        [host] = store.search(SearchQuery(classes=devices, limit=10)).items
        assert host.cls == "Host"

        polled = asyncio.run(run_discovery(lab_collector(profiles), [ADDRESS], store))
        assert [o["outcome"] for o in polled.outcomes] == ["ok"]
        found = [c for c in store.search(SearchQuery(classes=devices, limit=50)).items
                 if c.attrs.get("management_ip") == ADDRESS]
        assert [c.id for c in found] == [host.id]  # the same CI, now known better
        switch = found[0]
        assert switch.cls == "Switch" and switch.attrs["hostname"] == "sw-core-1"
        assert {"scan", "snmp"} <= {src for srcs in switch.provenance.values() for src in srcs}
        endpoint_hosts = {r.dst for r in store.relationships(type="RUNS_ON")}
        assert endpoint_hosts == {switch.id}
        assert store.conflicts() == []

        again = asyncio.run(run_discovery(ScanCollector(settings), [ADDRESS], store))  # a later scan: no change
        assert [o["changes"] for o in again.outcomes] == [0]
    finally:
        store.close()
