"""SNMP discovery against Debian's net-snmp snmpd (v2c and v3 authPriv) and the snmpsim lab agents."""

from __future__ import annotations

import asyncio
from pathlib import Path

from snmp_agents import SnmpdAgent

from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.credentials import SnmpProfile, load_credentials
from discovery.outcomes import Outcome, TargetResult
from discovery.runner import collect_target, run_discovery
from discovery.snmp.client import SnmpSettings
from discovery.snmp.collector import SnmpCollector
from tests.integration.snmp.conftest import Profiles

FAST = SnmpSettings(timeout=0.4, retries=0, max_repetitions=25)


async def collect_once(collector: SnmpCollector, target: str) -> TargetResult:
    """One target, then the collector's v3 engines closed inside the same event loop."""
    try:
        return await collect_target(collector, target)
    finally:
        collector.close()


def pick(profiles: Profiles, *names: str) -> list[SnmpProfile]:
    found = load_credentials(profiles.path).pick(list(names), "snmp")
    return [p for p in found if isinstance(p, SnmpProfile)]


def test_v2c_and_v3_see_the_same_box(profiles: Profiles, snmpd: SnmpdAgent) -> None:
    batches = {}
    for name in ("snmpd-v2c", "snmpd-v3"):
        result = asyncio.run(collect_once(SnmpCollector(pick(profiles, name), FAST), snmpd.host))
        assert (result.outcome, result.profile, result.detail) == (Outcome.OK, name, "")
        assert result.batch is not None and result.batch.complete
        batches[name] = result.batch
    devices = {name: b.cis[0] for name, b in batches.items()}
    for name, device in devices.items():
        assert device.cls == "Server"
        assert device.attrs["hostname"] == snmpd.sys_name
        assert device.attrs["management_ip"] == snmpd.host
        assert device.attrs["snmp_profile"] == name
        assert device.attrs["os"] == "Linux"
    shape = {name: sorted((c.cls, c.attrs.get("if_name") or c.attrs.get("address")) for c in b.cis[1:])
             for name, b in batches.items()}
    assert shape["snmpd-v2c"] == shape["snmpd-v3"]
    assert ("Interface", "lo") in shape["snmpd-v2c"]


def test_each_target_fails_or_succeeds_on_its_own(profiles: Profiles, snmpd: SnmpdAgent, tmp_path: Path) -> None:
    """Profiles in order: a wrong community, then snmpd's v3 user.

    snmpd: the community times out, v3 works. The lab switch (snmpsim) does not know the v3 user:
    auth_failed. 127.0.1.9: nothing listens: refused. One run, three outcomes."""
    store = SqliteStore(tmp_path / "c.db")
    try:
        collector = SnmpCollector(pick(profiles, "bad-v2c", "snmpd-v3"), FAST)
        record = asyncio.run(run_discovery(collector, [snmpd.host, "127.0.1.1", "127.0.1.9"], store))
        got = {o["target"]: (o["outcome"], o["profile"]) for o in record.outcomes}
        assert got == {snmpd.host: ("ok", "snmpd-v3"), "127.0.1.1": ("auth_failed", None),
                       "127.0.1.9": ("refused", None)}
        detail = next(o["detail"] for o in record.outcomes if o["target"] == "127.0.1.1")
        assert "profile bad-v2c" in detail and "profile snmpd-v3" in detail
        devices = store.search(SearchQuery(classes=["Server", "Switch"], limit=10)).items
        assert [d.attrs["hostname"] for d in devices] == [snmpd.sys_name]
    finally:
        store.close()


def test_wrong_v3_key_is_auth_failed_and_wrong_community_a_timeout(profiles: Profiles, snmpd: SnmpdAgent) -> None:
    for names, outcome in ((["bad-v3"], Outcome.AUTH_FAILED), (["bad-v2c"], Outcome.TIMEOUT),
                           (["lab-v2c"], Outcome.TIMEOUT)):
        result = asyncio.run(collect_once(SnmpCollector(pick(profiles, *names), FAST), snmpd.host))
        assert result.outcome != Outcome.OK, f"{names} worked against snmpd"
        assert result.outcome == outcome and result.batch is None, (names, result.detail)


def test_the_remembered_profile_is_tried_first(profiles: Profiles, snmpd: SnmpdAgent, tmp_path: Path) -> None:
    slow_wrong_first = SnmpSettings(timeout=1.0, retries=0)
    store = SqliteStore(tmp_path / "r.db")
    try:
        collector = SnmpCollector(pick(profiles, "bad-v2c", "snmpd-v2c"), slow_wrong_first)
        first = asyncio.run(run_discovery(collector, [snmpd.host], store)).outcomes[0]
        second = asyncio.run(run_discovery(collector, [snmpd.host], store)).outcomes[0]
        assert (first["outcome"], first["profile"], second["outcome"], second["profile"]) == (
            "ok", "snmpd-v2c", "ok", "snmpd-v2c")
        assert first["seconds"] >= 1.0  # waited for the wrong community
        assert second["seconds"] < 1.0  # went straight to the profile that worked on this device
    finally:
        store.close()
