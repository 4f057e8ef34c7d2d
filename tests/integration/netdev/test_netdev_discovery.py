"""Network device discovery against SSH-speaking simulators (fakenos), into a real SQLite store."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import paramiko
import pytest
from fakenos_devices import FakeDevices, free_port, write_host_key

from cmdb.batch import Batch, CIRecord, RelRecord
from cmdb.ingest import ingest
from cmdb.store.base import DiscoveryRunRecord, SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.credentials import SecretRef, SshProfile, load_credentials
from discovery.hostkeys import KnownHosts
from discovery.names import long_interface_name
from discovery.netdev.collector import NetDeviceCollector
from discovery.netdev.session import DeviceSession
from discovery.outcomes import Outcome, TargetError
from discovery.runner import run_discovery

from .conftest import Lab, device_spec, lab_outputs

DEVICE_CLASSES = ["Switch", "Router", "Firewall", "NetworkDevice", "Host", "Server"]
LAB_LINKS = {
    ("sw1", "GigabitEthernet1/0/1", "leaf1", "Ethernet1"),
    ("sw1", "GigabitEthernet1/0/2", "r1", "ge-0/0/0"),
    ("sw1", "GigabitEthernet1/0/3", "core9", "TenGigabitEthernet1/0/1"),
    ("leaf1", "Ethernet1", "sw1", "GigabitEthernet1/0/1"),
    ("leaf1", "Ethernet2", "r1", "ge-0/0/1"),
    ("r1", "ge-0/0/0", "sw1", "GigabitEthernet1/0/2"),
    ("r1", "ge-0/0/1", "leaf1", "Ethernet2"),
}


def profiles(lab: Lab, where: Path, named: dict[str, str | None] | None = None) -> list[SshProfile]:
    creds = load_credentials(lab.credentials(where, named))
    return [p for p in creds.pick(list((named or {"lab": None}).keys()), "ssh") if isinstance(p, SshProfile)]


def discover(store: SqliteStore, lab: Lab, where: Path, targets: list[str], *, tofu: bool = True,
             named: dict[str, str | None] | None = None, device_type: str | None = None) -> DiscoveryRunRecord:
    collector = NetDeviceCollector(profiles(lab, where, named), where / "known_hosts", trust_on_first_use=tofu,
                                   device_type=device_type, connect_timeout=5, command_timeout=10, workers=4)
    return asyncio.run(run_discovery(collector, targets, store, concurrency=4, target_timeout=60))


def outcome_of(record: DiscoveryRunRecord) -> dict[str, dict[str, Any]]:
    return {o["target"]: o for o in record.outcomes}


def devices(store: SqliteStore) -> dict[str, Any]:
    items = store.search(SearchQuery(classes=DEVICE_CLASSES, limit=100)).items
    return {c.attrs.get("hostname") or c.id: c for c in items}


def interfaces(store: SqliteStore, device: str | None = None) -> list[tuple[str, str]]:
    items = store.search(SearchQuery(classes=["Interface"], limit=500)).items
    return sorted((i.attrs["device_name"], i.attrs["if_name"]) for i in items
                  if device is None or i.attrs["device_name"] == device)


def links(store: SqliteStore) -> set[tuple[str, str, str, str]]:
    cis = {c.id: c for c in store.search(SearchQuery(classes=["Interface"], limit=500)).items}
    return {(cis[r.src].attrs["device_name"], cis[r.src].attrs["if_name"], cis[r.dst].attrs["device_name"],
             cis[r.dst].attrs["if_name"]) for r in store.relationships(type="CONNECTED_TO", limit=500)}


@pytest.fixture()
def store(tmp_path: Path) -> Any:
    s = SqliteStore(str(tmp_path / "cmdb.db"))
    try:
        yield s
    finally:
        s.close()


def test_lab_discovery_yields_devices_neighbour_links_and_stub_neighbours(
        netdev_lab: Lab, store: SqliteStore, tmp_path: Path) -> None:
    a = netdev_lab.addresses
    record = discover(store, netdev_lab, tmp_path, [a["sw1"], a["leaf1"], a["r1"], a["ceos-stock"]])
    out = outcome_of(record)
    assert {t: o["outcome"] for t, o in out.items()} == {
        a["sw1"]: "ok", a["leaf1"]: "ok", a["r1"]: "ok", a["ceos-stock"]: "parse_error"}
    assert out[a["sw1"]]["profile"] == "lab" and out[a["sw1"]]["detail"] == "cisco_ios sw1"  # device type detected
    assert "`show version`" in out[a["ceos-stock"]]["detail"] and "arista_eos" in out[a["ceos-stock"]]["detail"]

    found = devices(store)
    assert sorted(found) == ["core9", "leaf1", "r1", "sw1"]
    sw1, leaf1, r1, core9 = found["sw1"], found["leaf1"], found["r1"], found["core9"]
    assert (sw1.cls, sw1.attrs["serial_number"], sw1.attrs["model"], sw1.attrs["vendor"]) == (
        "Switch", "FOC2231X0AB", "C9300-24T", "Cisco")
    assert (leaf1.cls, leaf1.attrs["serial_number"], leaf1.attrs["os"]) == ("Switch", "JPE19181234", "EOS")
    assert (r1.cls, r1.attrs["serial_number"], r1.attrs["os_version"]) == ("Router", "JN11F2D3AAFA", "21.4R3-S2.3")
    for dev, name in ((sw1, "sw1"), (leaf1, "leaf1"), (r1, "r1")):
        assert dev.attrs["management_ip"] == a[name] and dev.attrs["ssh_profile"] == "lab"
        assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", dev.attrs["ssh_host_key"])
    # core9 is no target: a stub from sw1's CDP, from the weakest source, with the port sw1 sees.
    assert (core9.cls, core9.attrs["management_ip"]) == ("Switch", "10.255.0.9")
    assert set(core9.provenance["hostname"]) == {"neighbours"}
    core9_ports = [store.get_ci(r.dst) for r in store.relationships(core9.id, type="HAS_INTERFACE", direction="out")]
    assert [p.attrs["if_name"] for p in core9_ports if p] == ["TenGigabitEthernet1/0/1"]

    assert links(store) == LAB_LINKS
    ports = interfaces(store)
    assert len(ports) == len(set(ports)) == 18  # every neighbour's stub port met the device's own port
    for dev in (sw1, leaf1, r1):  # each device owns all its ports, the ones neighbours named included
        owned = store.relationships(dev.id, type="HAS_INTERFACE", direction="out")
        assert len(owned) == len(interfaces(store, dev.attrs["hostname"]))

    # Nothing of the unparsable device: no CI, no ledger entry for its scope.
    assert not store.search(SearchQuery(classes=DEVICE_CLASSES, attrs={"management_ip": a["ceos-stock"]})).items
    ledger = store.runs(None, 50)
    assert {r.scope for r in ledger if r.source == "ssh"} == {f"{a[n]}/32" for n in ("sw1", "leaf1", "r1")}
    assert all(r.complete for r in ledger if r.source == "ssh")
    known = KnownHosts(tmp_path / "known_hosts")._keys  # trust on first use recorded every host it met
    assert {e for e in known} == {f"[{a[n]}]:{netdev_lab.port}" for n in ("sw1", "leaf1", "r1", "ceos-stock")}

    # The password is nowhere in the store (graph, history, run records), whatever table.
    store.close()
    for path in tmp_path.glob("cmdb.db*"):
        assert netdev_lab.password.encode() not in path.read_bytes()


def snmp_batch() -> Batch:
    """What SNMP discovery of sw1 produces: sysName as hostname, the ENTITY-MIB chassis serial, the
    polled address, and ifName in its long form (``Gi1/0/1`` -> ``GigabitEthernet1/0/1``)."""
    batch = Batch(source="snmp", scope="127.0.5.1/32", complete=True)
    batch.cis.append(CIRecord("Switch", {"hostname": "sw1", "serial_number": "FOC2231X0AB",
                                         "management_ip": "127.0.5.1", "sys_object_id": "1.3.6.1.4.1.9.1.2494",
                                         "snmp_profile": "lab-v2c"}, ref="dev"))
    for n, if_name in enumerate(["Vl10", "Gi0/0", "Gi1/0/1", "Gi1/0/2", "Gi1/0/3", "Gi1/0/4", "Lo0", "Nu0"]):
        batch.cis.append(CIRecord("Interface", {"device_name": "sw1", "if_name": long_interface_name(if_name),
                                                "speed_mbps": 1000}, ref=f"if{n}"))
        batch.rels.append(RelRecord("HAS_INTERFACE", "dev", f"if{n}"))
    return batch


@pytest.mark.parametrize("snmp_first", [True, False], ids=["snmp-then-ssh", "ssh-then-snmp"])
def test_the_same_device_found_by_snmp_is_one_ci(netdev_lab: Lab, store: SqliteStore, tmp_path: Path,
                                                 snmp_first: bool) -> None:
    if snmp_first:
        ingest(store, snmp_batch())
    record = discover(store, netdev_lab, tmp_path, [netdev_lab.addresses["sw1"]])
    assert [o["outcome"] for o in record.outcomes] == ["ok"]
    if not snmp_first:
        ingest(store, snmp_batch())
    sw1 = [c for c in devices(store).values() if c.attrs.get("serial_number") == "FOC2231X0AB"]
    assert len(sw1) == 1 and sw1[0].cls == "Switch"
    assert set(sw1[0].provenance["serial_number"]) == {"snmp", "ssh"}
    assert sw1[0].attrs["os"] == "IOS-XE" and sw1[0].attrs["sys_object_id"] == "1.3.6.1.4.1.9.1.2494"
    ports = interfaces(store, "sw1")
    assert len(ports) == len(set(ports))
    assert [p[1] for p in ports] == sorted(["GigabitEthernet0/0", "GigabitEthernet1/0/1", "GigabitEthernet1/0/2",
                                            "GigabitEthernet1/0/3", "GigabitEthernet1/0/4", "Loopback0", "Null0",
                                            "Vlan10"])
    owned = store.relationships(sw1[0].id, type="HAS_INTERFACE", direction="out")
    assert len(owned) == 8
    assert not store.conflicts()


def test_wrong_password_is_auth_failed_and_writes_nothing(netdev_lab: Lab, store: SqliteStore,
                                                          tmp_path: Path) -> None:
    target = netdev_lab.addresses["sw1"]
    record = discover(store, netdev_lab, tmp_path, [target], named={"wrong": "not-the-password"})
    (only,) = record.outcomes
    assert (only["outcome"], only["items"]) == ("auth_failed", 0)
    assert "wrong" in only["detail"] and "not-the-password" not in only["detail"]
    assert store.search(SearchQuery(limit=10)).total == 0 and store.runs(None, 10) == []


def test_the_next_profile_is_tried_after_a_refusal(netdev_lab: Lab, store: SqliteStore, tmp_path: Path) -> None:
    record = discover(store, netdev_lab, tmp_path, [netdev_lab.addresses["r1"]],
                      named={"wrong": "not-the-password", "right": None})
    assert [(o["outcome"], o["profile"]) for o in record.outcomes] == [("ok", "right")]
    assert devices(store)["r1"].attrs["ssh_profile"] == "right"


def test_unknown_host_key_without_trust_on_first_use_writes_nothing(netdev_lab: Lab, store: SqliteStore,
                                                                    tmp_path: Path) -> None:
    record = discover(store, netdev_lab, tmp_path, [netdev_lab.addresses["leaf1"]], tofu=False)
    assert [o["outcome"] for o in record.outcomes] == ["host_key_unknown"]
    assert store.search(SearchQuery(limit=10)).total == 0


def test_changed_host_key_is_refused_and_nothing_is_written(netdev_lab: Lab, store: SqliteStore,
                                                            tmp_path: Path) -> None:
    """The device comes back with another key (a new box, or someone in the middle): refused."""
    address = "127.0.5.9"
    port = free_port([address])
    old_key, new_key = write_host_key(tmp_path / "old_key"), write_host_key(tmp_path / "new_key")

    def lab_with(key: Path, workdir: str) -> FakeDevices:
        spec = {"devices": [device_spec("sw1", "cisco_ios", address, port, netdev_lab.password, key,
                                        lab_outputs("sw1"))]}
        return FakeDevices(spec, tmp_path / workdir)

    lab = Lab(port, netdev_lab.password, {"sw1": address}, tmp_path)
    with lab_with(old_key, "before"):
        first = discover(store, lab, tmp_path, [address])
    assert [o["outcome"] for o in first.outcomes] == ["ok"]
    before = devices(store)["sw1"]
    runs_before = store.runs(None, 50)
    with lab_with(new_key, "after"):
        second = discover(store, lab, tmp_path, [address])
    (only,) = second.outcomes
    assert (only["outcome"], only["items"]) == ("host_key_changed", 0)
    assert "changed" in only["detail"] and "ssh-keygen -R" in only["detail"]
    after = devices(store)["sw1"]
    assert (after.updated_at, after.attrs) == (before.updated_at, before.attrs)
    assert store.runs(None, 50) == runs_before
    assert (tmp_path / "known_hosts").read_text().count(f"[{address}]:{port}") == 1  # the old key stays


def test_a_device_wanting_an_enable_secret_is_a_parse_error_not_a_hang(netdev_lab: Lab, store: SqliteStore,
                                                                        tmp_path: Path) -> None:
    """The profile has no enable secret: the session goes on unprivileged, where this image refuses
    ``show version``; the device type given skips detection."""
    record = discover(store, netdev_lab, tmp_path, [netdev_lab.addresses["ios-secret"]], device_type="cisco_ios")
    (only,) = record.outcomes
    assert only["outcome"] == "parse_error" and only["seconds"] < 15
    assert "`show version`: the device rejected the command" in only["detail"]
    assert store.search(SearchQuery(limit=10)).total == 0


def test_a_key_profile_logs_in_with_its_key_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is loaded from the profile (no look-around in ~/.ssh, no agent); a wrong passphrase is
    auth_failed and says so without the passphrase."""
    key_file = tmp_path / "id_rsa"
    paramiko.RSAKey.generate(2048).write_private_key_file(str(key_file), password="right-phrase")
    key_file.chmod(0o600)
    monkeypatch.setenv("NETDEV_TEST_PHRASE", "right-phrase")
    monkeypatch.setenv("NETDEV_TEST_WRONG", "wrong-phrase")
    known = KnownHosts(tmp_path / "known_hosts", trust_on_first_use=True)

    def session(env: str) -> DeviceSession:
        prof = SshProfile("keyed", "netops", key_file=str(key_file),
                          passphrase=SecretRef("keyed", "passphrase", env=env))
        return DeviceSession("127.0.0.1", 22, prof, known, device_type="cisco_ios", connect_timeout=1,
                             command_timeout=1)

    args = session("NETDEV_TEST_PHRASE")._connect_args()
    assert isinstance(args["pkey"], paramiko.RSAKey) and args["password"] is None
    assert (args["use_keys"], args["allow_agent"], args["ssh_strict"], args["system_host_keys"]) == (
        False, False, True, False)
    assert args["alt_key_file"] == str(tmp_path / "known_hosts")
    with pytest.raises(TargetError) as err:
        session("NETDEV_TEST_WRONG")._connect_args()
    assert err.value.outcome == Outcome.AUTH_FAILED and "keyed" in str(err.value)
    assert "phrase" not in str(err.value).replace("passphrase", "")


def test_a_command_that_does_not_parse_makes_a_partial_view(netdev_lab: Lab, store: SqliteStore,
                                                             tmp_path: Path) -> None:
    """sw2 answers LLDP in a form no template knows: what the other commands said is written, as a
    partial view (no aging), and the run names the command; CDP switched off is simply no neighbours."""
    target = netdev_lab.addresses["sw2"]
    (only,) = discover(store, netdev_lab, tmp_path, [target]).outcomes
    assert only["outcome"] == "ok" and only["items"] > 10
    assert "partial view, not parsed: `show lldp neighbors detail`" in only["detail"]
    assert "cdp" not in only["detail"]
    (run,) = [r for r in store.runs(None, 10) if r.scope == f"{target}/32"]
    assert (run.source, run.complete) == ("ssh", False)
    sw2 = devices(store)["sw2"]
    assert (sw2.attrs["serial_number"], sw2.attrs["management_ip"]) == ("FOC2231X0AB", target)
    assert len(interfaces(store, "sw2")) == 7 and links(store) == set()
