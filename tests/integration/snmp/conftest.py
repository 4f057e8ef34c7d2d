"""Real SNMP agents for the SNMP tests, started once per session and killed at the end.

- ``snmpd``: Debian net-snmp on 127.0.0.1 with a v2c community and a v3 authPriv (SHA/AES) user;
- ``lab``: one snmpsim process serving the three lab switches of tests/data/snmp on 127.0.1.1-3.

Both listen on the same UDP port (on different addresses), so one credential profile with one
port can reach every agent of a run. Secrets are random per session.
"""

from __future__ import annotations

import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from loopback_ports import free_common_port  # scripts/ is on sys.path (tests/conftest.py)
from snmp_agents import SimAgent, SnmpdAgent, SnmpsimAgents

from discovery.snmp import snmprec

DATA = Path(__file__).resolve().parents[2] / "data" / "snmp"
LAB = {"127.0.1.1": "sw-core-1", "127.0.1.2": "sw-acc-2", "127.0.1.3": "sw-acc-3"}
SNMPD_HOST = "127.0.0.1"




@pytest.fixture(scope="session")
def snmp_port() -> int:
    return free_common_port([SNMPD_HOST, *LAB], "udp")


@pytest.fixture(scope="session")
def snmpd(snmp_port: int) -> Iterator[SnmpdAgent]:
    agent = SnmpdAgent(host=SNMPD_HOST, port=snmp_port)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture(scope="session")
def lab_community() -> str:
    return "lab-" + secrets.token_hex(6)


@pytest.fixture(scope="session")
def lab(snmp_port: int, lab_community: str) -> Iterator[SnmpsimAgents]:
    agents = [SimAgent(address, snmprec.load(DATA / f"{name}.snmprec")) for address, name in LAB.items()]
    with SnmpsimAgents(agents, community=lab_community, port=snmp_port) as sim:
        yield sim


@dataclass
class Profiles:
    """A credentials file whose secrets come from environment variables and 0600 files."""

    path: Path
    secrets: list[str]


@pytest.fixture()
def profiles(tmp_path: Path, snmpd: SnmpdAgent, lab: SnmpsimAgents, lab_community: str,
             monkeypatch: pytest.MonkeyPatch) -> Profiles:
    """Profiles: snmpd-v2c (env), snmpd-v3 (auth key in a 0600 file, priv key in env), lab-v2c (0600 file),
    and wrong ones: bad-v2c (a community nobody uses), bad-v3 (snmpd's user with a wrong auth key)."""
    def secret_file(name: str, value: str) -> str:
        path = tmp_path / name
        path.write_text(value + "\n")
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        return str(path)

    wrong_community, wrong_key = "nope-" + secrets.token_hex(6), "wrong-" + secrets.token_hex(8)
    monkeypatch.setenv("CMDB_TEST_SNMPD_COMMUNITY", snmpd.community)
    monkeypatch.setenv("CMDB_TEST_SNMPD_PRIV", snmpd.priv_key)
    monkeypatch.setenv("CMDB_TEST_WRONG_COMMUNITY", wrong_community)
    port = snmpd.port
    doc = {"profiles": {
        "snmpd-v2c": {"type": "snmp", "version": "2c", "community": {"env": "CMDB_TEST_SNMPD_COMMUNITY"},
                      "port": port},
        "snmpd-v3": {"type": "snmp", "version": "3", "user": snmpd.v3_user, "auth_protocol": "sha",
                     "auth_key": {"file": secret_file("v3-auth", snmpd.auth_key)}, "priv_protocol": "aes",
                     "priv_key": {"env": "CMDB_TEST_SNMPD_PRIV"}, "port": port},
        "lab-v2c": {"type": "snmp", "version": "2c", "community": {"file": secret_file("lab", lab_community)},
                    "port": port},
        "bad-v2c": {"type": "snmp", "version": "2c", "community": {"env": "CMDB_TEST_WRONG_COMMUNITY"},
                    "port": port},
        "bad-v3": {"type": "snmp", "version": "3", "user": snmpd.v3_user, "auth_protocol": "sha",
                   "auth_key": {"file": secret_file("bad-auth", wrong_key)}, "priv_protocol": "aes",
                   "priv_key": {"env": "CMDB_TEST_SNMPD_PRIV"}, "port": port},
    }}
    path = tmp_path / "credentials.yaml"
    path.write_text(yaml.safe_dump(doc))
    return Profiles(path, [snmpd.community, snmpd.auth_key, snmpd.priv_key, lab_community, wrong_community,
                           wrong_key])
