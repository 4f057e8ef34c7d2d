"""The fake network lab: fakenos SSH device simulators in their own process, on 127.0.5.x.

sw1 (cisco_ios), leaf1 (arista_eos) and r1 (juniper_junos) serve the outputs in
tests/data/netdev/lab/<name>/ (each other's CDP/LLDP neighbours); ceos-stock is fakenos's own
arista_eos with its canned outputs, whose ``show version`` does not parse; ios-secret is fakenos's
cisco_ios whose ``enable`` asks for a secret (and its ``show version`` needs enable); sw2 is sw1
renamed, with CDP off and an LLDP answer in a form no template knows. All listen on one port,
found free on every address, so one credential profile fits them all.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakenos_devices import FakeDevices, free_port  # scripts/, on sys.path through tests/conftest.py

DATA = Path(__file__).resolve().parents[2] / "data" / "netdev" / "lab"
LAB = yaml.safe_load((DATA / "devices.yml").read_text())
USERNAME = "netops"


def lab_outputs(name: str) -> dict[str, str]:
    return {p.stem.replace("_", " "): p.read_text() for p in sorted((DATA / name).glob("*.raw"))}


LLDP_BRIEF = """Capability codes:
    (R) Router, (B) Bridge, (T) Telephone, (C) DOCSIS Cable Device
    (W) WLAN Access Point, (P) Repeater, (S) Station, (O) Other

Device ID           Local Intf     Hold-time  Capability      Port ID
leaf1.lab.example   Gi1/0/1        120        B,R             Ethernet1

Total entries displayed: 1
"""


def partial_outputs() -> dict[str, str]:
    """sw2: sw1's outputs under another name, CDP off, LLDP answered in its brief form."""
    outputs = {cmd: text.replace("sw1", "sw2") for cmd, text in lab_outputs("sw1").items()}
    outputs["show cdp neighbors detail"] = "% CDP is not enabled"
    outputs["show lldp neighbors detail"] = LLDP_BRIEF
    return outputs


def device_spec(name: str, platform: str, address: str, port: int, password: str,
                host_key_file: Path | None = None, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "platform": platform, "address": address, "port": port, "username": USERNAME,
            "password": password, "host_key_file": str(host_key_file) if host_key_file else None,
            "outputs": outputs or {}}


OTHER_DEVICES = {"ceos-stock": {"platform": "arista_eos", "address": "127.0.5.4", "outputs": {}},
         "ios-secret": {"platform": "cisco_ios", "address": "127.0.5.5", "outputs": {"enable": "Password: "}},
         "sw2": {"platform": "cisco_ios", "address": "127.0.5.6", "outputs": partial_outputs()}}


@dataclass
class Lab:
    port: int
    password: str
    addresses: dict[str, str]  # device name -> address
    workdir: Path

    def credentials(self, where: Path, profiles: dict[str, str | None] | None = None) -> Path:
        """A profiles file; ``profiles`` maps profile name -> password (None: the lab's), each in a 0600 file."""
        docs: dict[str, Any] = {}
        for name, password in (profiles or {"lab": None}).items():
            secret = where / f"{name}.password"
            secret.write_text((password if password is not None else self.password) + "\n")
            secret.chmod(0o600)
            docs[name] = {"type": "ssh", "username": USERNAME, "password": {"file": str(secret)}, "port": self.port}
        path = where / "credentials.yaml"
        path.write_text(yaml.safe_dump({"profiles": docs}))
        return path


@pytest.fixture(scope="session")
def netdev_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("netdev-lab")
    devices = {**LAB, **OTHER_DEVICES}
    addresses = {name: d["address"] for name, d in devices.items()}
    port = free_port(addresses.values())
    password = "lab-" + secrets.token_hex(8)
    spec = {"devices": [
        device_spec(name, d["platform"], d["address"], port, password,
                    outputs=lab_outputs(name) if name in LAB else d["outputs"])
        for name, d in devices.items()
    ]}
    with FakeDevices(spec, workdir):
        yield Lab(port, password, addresses, workdir)
