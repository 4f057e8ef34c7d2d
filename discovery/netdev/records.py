"""What a device's show commands say, vendor-neutral: the output of parsing, the input of ``transform``.

Parsing (``platforms``) turns each command's text into a list of these records with names
already normalised (``names``); ``transform`` turns them into a Batch. The golden files in
``tests/data/netdev`` hold them as YAML (``as_dict`` / ``record_from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class SystemRecord:
    """The device itself (``show version``, ``show hostname``, ``show inventory`` ...); None = not said."""

    hostname: str | None = None
    fqdn: str | None = None
    model: str | None = None
    serial_number: str | None = None
    os_version: str | None = None
    os: str | None = None  # when the output names a flavour the platform's default does not (IOS-XE)
    base_mac: str | None = None
    description: str | None = None  # the raw platform line, for telling a router from a switch


@dataclass
class InterfaceRecord:
    """One interface; ``addresses`` are ``address/prefix`` strings."""

    if_name: str
    alias: str | None = None
    mac_address: str | None = None
    speed_mbps: int | None = None
    admin_status: str | None = None
    oper_status: str | None = None
    addresses: list[str] = field(default_factory=list)


@dataclass
class NeighbourRecord:
    """One CDP or LLDP neighbour seen on ``local_interface``; ``remote_name`` is its short hostname."""

    protocol: str  # cdp | lldp
    local_interface: str
    remote_name: str
    remote_interface: str
    management_ip: str | None = None
    platform: str | None = None
    capabilities: list[str] = field(default_factory=list)  # router, switch, bridge, phone, host, ...


Record = SystemRecord | InterfaceRecord | NeighbourRecord
RECORD_KINDS: dict[str, type[SystemRecord] | type[InterfaceRecord] | type[NeighbourRecord]] = {
    "system": SystemRecord, "interface": InterfaceRecord, "neighbour": NeighbourRecord,
}


def kind_of(record: Record) -> str:
    return {SystemRecord: "system", InterfaceRecord: "interface", NeighbourRecord: "neighbour"}[type(record)]


def as_dict(record: Record) -> dict[str, Any]:
    """The record with its kind and without unset fields (the golden-file form)."""
    data = {k: v for k, v in asdict(record).items() if v is not None and v != []}
    return {"kind": kind_of(record), **data}


def record_from_dict(data: dict[str, Any]) -> Record:
    cls = RECORD_KINDS[data["kind"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
