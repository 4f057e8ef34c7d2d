"""One rule for which MAC identifies a box (``cmdb.model.identifying_mac``), and every discovery method
that reports MACs gives the same answer: a virtual-router MAC (HSRP, VRRP, GLBP), a multicast MAC or an
all-zero MAC never becomes a ``mac_addresses`` identity key, a port's burnt-in MAC does.

Each method is driven through its own transform, from the raw shape it reads (SNMP var-binds, parsed
``ip link`` output, parsed show commands), so a method that stops using the shared rule fails here.
"""

from __future__ import annotations

import pytest

from cmdb.batch import Batch
from cmdb.model import identifying_mac
from discovery.netdev.platforms import platform_for
from discovery.netdev.records import InterfaceRecord, SystemRecord
from discovery.netdev.transform import DeviceView, Reach, device_batch
from discovery.snmp import oids as O
from discovery.snmp.transform import RawDevice, to_snmp_batch
from discovery.ssh.facts import HostFacts
from discovery.ssh.parsers import Link
from discovery.ssh.transform import transform_host

BURNT_IN = "70:1f:53:aa:01:01"
NOT_IDENTIFYING = {
    "HSRP v1": "00:00:0c:07:ac:01",
    "HSRP v2": "00:00:0c:9f:f0:01",
    "VRRP": "00:00:5e:00:01:07",
    "VRRP IPv6": "00:00:5e:00:02:07",
    "GLBP": "00:07:b4:00:01:02",
    "multicast": "01:00:5e:00:00:fb",
    "broadcast": "ff:ff:ff:ff:ff:ff",
    "all-zero": "00:00:00:00:00:00",
}
OCTET_STRING = 4
INTEGER = 2


def snmp(mac: str) -> Batch:
    def octets(text: str) -> bytes:
        return bytes(int(x, 16) for x in text.split(":"))

    varbinds = [(O.SYS_NAME, OCTET_STRING, b"sw1")]
    for n, m in ((1, mac), (2, BURNT_IN)):
        varbinds += [((*O.IF_DESCR, n), OCTET_STRING, f"GigabitEthernet0/{n}".encode()),
                     ((*O.IF_TYPE, n), INTEGER, 6),  # ethernetCsmacd: a physical port
                     ((*O.IF_PHYS_ADDRESS, n), OCTET_STRING, octets(m))]
    return to_snmp_batch(RawDevice("127.0.0.1", "127.0.0.1", "lab", varbinds))


def ssh(mac: str) -> Batch:
    facts = HostFacts("127.0.0.1", "127.0.0.1", "web1", links=[
        Link(2, "eth0", "ether", BURNT_IN, True, "UP"), Link(3, "eth1", "ether", mac, True, "UP")])
    return transform_host(facts)


def netdev(mac: str) -> Batch:
    view = DeviceView(SystemRecord(hostname="sw1", base_mac=mac), [InterfaceRecord("GigabitEthernet0/1")])
    return device_batch(platform_for("cisco_ios"), view, Reach("127.0.0.1", "127.0.0.1", "SHA256:x", "lab"),
                        complete=True)


METHODS = {"snmp": snmp, "ssh": ssh, "netdev": netdev}


def device_macs(batch: Batch) -> list[str]:
    device = next(c for c in batch.cis if c.ref == "device")
    return list(device.attrs.get("mac_addresses", []))


@pytest.mark.parametrize("kind", NOT_IDENTIFYING)
def test_the_rule(kind: str) -> None:
    assert not identifying_mac(NOT_IDENTIFYING[kind])
    assert identifying_mac(BURNT_IN) and identifying_mac("70-1F-53-AA-01-01") and identifying_mac("701f.53aa.0101")
    assert not identifying_mac("not a mac") and not identifying_mac(None)


@pytest.mark.parametrize("kind", NOT_IDENTIFYING)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_the_same_answer(method: str, kind: str) -> None:
    assert NOT_IDENTIFYING[kind] not in device_macs(METHODS[method](NOT_IDENTIFYING[kind]))


@pytest.mark.parametrize("method", ["snmp", "ssh"])
def test_a_burnt_in_mac_identifies_the_box(method: str) -> None:
    assert device_macs(METHODS[method](BURNT_IN)) == [BURNT_IN]
    assert device_macs(netdev(BURNT_IN)) == [BURNT_IN]


def test_the_hsrp_mac_gives_one_answer_across_methods() -> None:
    hsrp = "00:00:0c:07:ac:01"
    answers = {name: hsrp in device_macs(method(hsrp)) for name, method in METHODS.items()}
    assert answers == {"snmp": False, "ssh": False, "netdev": False}
