#!/usr/bin/env python3
"""Real SNMP agents on loopback for the SNMP tests and benchmark: net-snmp ``snmpd`` and ``snmpsim``.

- ``SnmpdAgent``: Debian's ``/usr/sbin/snmpd`` in the foreground on ``127.0.0.1:<free port>`` with a
  v2c community and a v3 authPriv user, its config and persistent state in a private temp dir.
- ``SnmpsimAgents``: one ``snmpsim-command-responder`` process serving many agents, one SNMP engine
  per agent address (127.0.1.N, 127.0.2.N ...), each with its own ``.snmprec`` data.
- ``DeviceSpec`` / ``device_varbinds``: simulated switches (system, IF-MIB, IP-MIB, ENTITY-MIB,
  LLDP-MIB, CISCO-CDP-MIB, ARP), used to write ``tests/data/snmp/*.snmprec`` (``write-lab``) and to
  build the benchmark's 100 agents.

snmpsim is installed on first use into its own venv (pinned versions, from PyPI) built from
Debian's ``/usr/bin/python3``. Run as root, snmpsim insists on dropping to ``nobody``, which must
then read its Python, so that venv lives in a world-readable directory outside ``/root``
(``/var/cache/cmdb-test``; ``~/.cache/cmdb-test`` for other users; ``CMDB_TEST_CACHE`` overrides)
and its data files are copies in a world-readable temp dir.

CLI::

    python scripts/snmp_agents.py ensure-snmpsim              # build the snmpsim venv now (bootstrap)
    python scripts/snmp_agents.py write-lab tests/data/snmp   # (re)write the three lab switches
    python scripts/snmp_agents.py snmpd                        # run one snmpd until Ctrl-C
    python scripts/snmp_agents.py snmpsim tests/data/snmp/sw-*.snmprec   # serve files on 127.0.1.1..
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from discovery.snmp import snmprec  # noqa: E402
from discovery.snmp.ber import (  # noqa: E402
    PDU_GET,
    TAG_COUNTER32,
    TAG_GAUGE32,
    TAG_INTEGER,
    TAG_IP_ADDRESS,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_TIMETICKS,
    BerError,
    Varbind,
    decode_message,
    encode_request,
)
from discovery.snmp.oids import SYS_NAME, Oid, oid  # noqa: E402

SNMPD = Path("/usr/sbin/snmpd")
SYSTEM_PYTHON = Path("/usr/bin/python3")
SNMPSIM_REQUIREMENTS = ("snmpsim==1.2.2", "pysnmp==7.1.30", "pysmi==2.0.0", "pyasn1==0.6.5")
START_TIMEOUT = 60.0


def cache_dir() -> Path:
    env = os.environ.get("CMDB_TEST_CACHE")
    if env:
        return Path(env).expanduser()
    if os.geteuid() == 0:
        return Path("/var/cache/cmdb-test")
    return Path("~/.cache/cmdb-test").expanduser()


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def probe(host: str, port: int, community: str, timeout: float = 0.3) -> bool:
    """True when a v2c agent at host:port answers GET sysName.0 with ``community``."""
    request_id = secrets.randbelow(1 << 30)
    message = encode_request(PDU_GET, request_id, community.encode(), [SYS_NAME])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            s.send(message)
            while True:
                data = s.recv(65535)
                with contextlib.suppress(BerError):
                    if decode_message(data)[3] == request_id:
                        return True
        except OSError:  # timeout, or ICMP port unreachable while the agent starts
            return False


_RUNNING: dict[int, subprocess.Popen[bytes]] = {}  # agent processes still up: stopped at interpreter exit too


def _started(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    _RUNNING[proc.pid] = proc
    return proc


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    _RUNNING.pop(proc.pid, None)
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@atexit.register
def _stop_all_at_exit() -> None:
    for proc in list(_RUNNING.values()):
        with contextlib.suppress(Exception):
            _stop(proc)


class _AgentProcess:
    """Stopping and the ``with`` protocol, shared by the snmpd and snmpsim launchers."""

    proc: subprocess.Popen[bytes] | None
    workdir: Path | None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------ snmpd


@dataclass
class SnmpdAgent(_AgentProcess):
    """Debian net-snmp ``snmpd`` on loopback with a v2c community and a v3 authPriv (SHA/AES) user."""

    community: str = field(default_factory=lambda: "c-" + secrets.token_hex(8))
    v3_user: str = "cmdbv3"
    auth_key: str = field(default_factory=lambda: "a-" + secrets.token_hex(10))
    priv_key: str = field(default_factory=lambda: "p-" + secrets.token_hex(10))
    sys_name: str = "lab-linux-1"
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None

    def start(self) -> SnmpdAgent:
        if not SNMPD.exists():
            raise RuntimeError(f"{SNMPD} is missing: apt-get install snmpd (scripts/bootstrap.sh does it)")
        self.port = self.port or free_udp_port(self.host)
        self.workdir = Path(tempfile.mkdtemp(prefix="cmdb-snmpd-"))
        (self.workdir / "persist").mkdir()
        conf = self.workdir / "snmpd.conf"
        conf.write_text(
            f"agentAddress udp:{self.host}:{self.port}\n"
            f"rocommunity {self.community} {self.host}\n"
            f"createUser {self.v3_user} SHA {self.auth_key} AES {self.priv_key}\n"
            f"rouser {self.v3_user} priv\n"
            f"sysName {self.sys_name}\nsysLocation Lab rack 7\nsysContact ops@example.com\n"
        )
        conf.chmod(0o600)
        env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(self.workdir / "persist")}
        self.proc = _started(subprocess.Popen(
            [str(SNMPD), "-f", "-Lf", str(self.workdir / "snmpd.log"), "-C", "-I", "-smux", "-c", str(conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True,
        ))
        deadline = time.monotonic() + 15
        while not probe(self.host, self.port, self.community):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "snmpd.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"snmpd did not start on {self.host}:{self.port}: {log}")
        return self



# ------------------------------------------------------------------------------------------------ snmpsim


def ensure_snmpsim() -> Path:
    """The snmpsim venv's python, created (once, under a lock) when missing."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    venv = base / "snmpsim-venv"
    marker = venv / ".cmdb-installed"
    wanted = " ".join(SNMPSIM_REQUIREMENTS)
    python = venv / "bin" / "python"
    if marker.exists() and marker.read_text() == wanted:
        return python
    with open(base / "snmpsim-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        if not SYSTEM_PYTHON.exists():
            raise RuntimeError(f"{SYSTEM_PYTHON} is missing: snmpsim needs a system Python (apt-get install "
                               "python3 python3-venv)")
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], check=True, stdin=subprocess.DEVNULL,
                       timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *SNMPSIM_REQUIREMENTS], check=True, stdin=subprocess.DEVNULL, timeout=600)
        for root, dirs, files in os.walk(venv):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, os.stat(path).st_mode | 0o444)
        marker.write_text(wanted)
    return python


@dataclass
class SimAgent:
    address: str
    records: list[Varbind]


class SnmpsimAgents(_AgentProcess):
    """One snmpsim process serving one agent per address, each with its own data and engine id."""

    def __init__(self, agents: Sequence[SimAgent], community: str = "public", port: int = 0,
                 max_var_binds: int = 64) -> None:
        self.agents = list(agents)
        self.community = community
        self.port = port
        self.max_var_binds = max_var_binds
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir: Path | None = None

    def start(self, timeout: float = START_TIMEOUT) -> SnmpsimAgents:
        python = ensure_snmpsim()
        self.port = self.port or free_udp_port(self.agents[0].address)
        self.workdir = Path(tempfile.mkdtemp(prefix="cmdb-snmpsim-"))
        self.workdir.chmod(0o755)
        cache = self.workdir / "cache"
        cache.mkdir()
        args = []
        for n, agent in enumerate(self.agents):
            data = self.workdir / f"agent{n}"
            data.mkdir()
            (data / f"{self.community}.snmprec").write_text(snmprec.dumps(agent.records))
            args.append(f"--v3-engine-id=auto --data-dir={data} --agent-udpv4-endpoint={agent.address}:{self.port}")
        (self.workdir / "agents.args").write_text("\n".join(args) + "\n")
        root = os.geteuid() == 0
        if root:
            shutil.chown(cache, "nobody", "nogroup")
        for path in self.workdir.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        cmd = [str(python), str(python.parent / "snmpsim-command-responder"), f"--cache-dir={cache}",
               f"--args-from-file={self.workdir / 'agents.args'}", f"--max-var-binds={self.max_var_binds}",
               "--logging-method=null"]
        if root:
            cmd += ["--process-user=nobody", "--process-group=nogroup"]
        log = open(self.workdir / "snmpsim.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = _started(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                              cwd=self.workdir, start_new_session=True))
        log.close()
        deadline = time.monotonic() + timeout
        pending = [a.address for a in self.agents]
        while pending:
            pending = [a for a in pending if not probe(a, self.port, self.community)]
            if pending and (self.proc.poll() is not None or time.monotonic() > deadline):
                text = (self.workdir / "snmpsim.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"snmpsim did not serve {pending[:3]} within {timeout:g} s: {text}")
        return self



# ------------------------------------------------------------------------------------------------ simulated devices


@dataclass
class Port:
    if_index: int
    name: str  # ifName
    descr: str  # ifDescr
    if_type: int = 6  # ethernetCsmacd
    mac: str | None = None
    speed_mbps: int = 1000
    alias: str = ""
    admin: int = 1
    oper: int = 1
    lldp_port: int | None = None  # lldpLocPortNum, when LLDP runs on the port


@dataclass
class Neighbour:
    """An LLDP (or CDP) neighbour as the local box stores it."""

    local_port: str  # local ifName
    sys_name: str
    port_id: str
    port_id_subtype: int = 5  # interfaceName
    port_desc: str = ""
    chassis_mac: str = "00:00:00:00:00:00"


@dataclass
class Address:
    address: str
    prefix: int
    port: str  # ifName


@dataclass
class ArpEntry:
    port: str
    address: str
    mac: str
    kind: int = 3  # dynamic; 2 invalid, 4 static


@dataclass
class DeviceSpec:
    sys_name: str
    sys_object_id: str
    sys_descr: str
    ports: list[Port]
    addresses: list[Address] = field(default_factory=list)
    lldp: list[Neighbour] = field(default_factory=list)
    lldp_port_id_subtype: int = 5  # how this box names its own ports in lldpLocPortTable
    cdp: list[Neighbour] = field(default_factory=list)
    arp: list[ArpEntry] = field(default_factory=list)
    chassis: dict[str, str] = field(default_factory=dict)  # serial, model, mfg, descr; empty: no ENTITY-MIB
    location: str = "Lab"


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def device_varbinds(spec: DeviceSpec) -> list[Varbind]:
    """The MIB of a simulated device, as snmpsim serves it."""
    out: list[Varbind] = []

    def put(name: str | Oid, tag: int, value: int | bytes | Oid | str) -> None:
        key = oid(name) if isinstance(name, str) else name
        out.append((key, tag, value.encode() if isinstance(value, str) else value))

    put("1.3.6.1.2.1.1.1.0", TAG_OCTET_STRING, spec.sys_descr)
    put("1.3.6.1.2.1.1.2.0", TAG_OID, oid(spec.sys_object_id))
    put("1.3.6.1.2.1.1.3.0", TAG_TIMETICKS, 123456789)
    put("1.3.6.1.2.1.1.4.0", TAG_OCTET_STRING, "noc@example.net")
    put("1.3.6.1.2.1.1.5.0", TAG_OCTET_STRING, spec.sys_name)
    put("1.3.6.1.2.1.1.6.0", TAG_OCTET_STRING, spec.location)
    put("1.3.6.1.2.1.1.7.0", TAG_INTEGER, 6)
    put("1.3.6.1.2.1.2.1.0", TAG_INTEGER, len(spec.ports))
    by_name = {p.name: p for p in spec.ports}
    for p in spec.ports:
        i = p.if_index
        speed = min(p.speed_mbps * 1_000_000, 4294967295)
        ift = "1.3.6.1.2.1.2.2.1"
        put(f"{ift}.1.{i}", TAG_INTEGER, i)
        put(f"{ift}.2.{i}", TAG_OCTET_STRING, p.descr)
        put(f"{ift}.3.{i}", TAG_INTEGER, p.if_type)
        put(f"{ift}.4.{i}", TAG_INTEGER, 1500 if p.if_type != 24 else 65536)
        put(f"{ift}.5.{i}", TAG_GAUGE32, speed)
        put(f"{ift}.6.{i}", TAG_OCTET_STRING, _mac(p.mac) if p.mac else b"")
        put(f"{ift}.7.{i}", TAG_INTEGER, p.admin)
        put(f"{ift}.8.{i}", TAG_INTEGER, p.oper)
        put(f"{ift}.9.{i}", TAG_TIMETICKS, 4200)
        for col in range(10, 21):
            put(f"{ift}.{col}.{i}", TAG_COUNTER32, (i * 7919 * col) % 4294967295)
        put(f"{ift}.21.{i}", TAG_GAUGE32, 0)
        put(f"{ift}.22.{i}", TAG_OID, (0, 0))
        ifx = "1.3.6.1.2.1.31.1.1.1"
        put(f"{ifx}.1.{i}", TAG_OCTET_STRING, p.name)
        for col in range(2, 6):
            put(f"{ifx}.{col}.{i}", TAG_COUNTER32, (i * 104729 * col) % 4294967295)
        for col in range(6, 14):
            put(f"{ifx}.{col}.{i}", 0x46, (i * 1299709 * col) % (1 << 63))
        put(f"{ifx}.14.{i}", TAG_INTEGER, 1)
        put(f"{ifx}.15.{i}", TAG_GAUGE32, p.speed_mbps)
        put(f"{ifx}.16.{i}", TAG_INTEGER, 2)
        put(f"{ifx}.17.{i}", TAG_INTEGER, 1 if p.if_type in (6, 117) else 2)
        put(f"{ifx}.18.{i}", TAG_OCTET_STRING, p.alias)
        put(f"{ifx}.19.{i}", TAG_TIMETICKS, 0)
    for a in spec.addresses:
        addr = ipaddress.ip_address(a.address)
        if_index = by_name[a.port].if_index
        if addr.version == 4:
            idx = str(addr)
            mask = ipaddress.IPv4Network(f"0.0.0.0/{a.prefix}").netmask
            put(f"1.3.6.1.2.1.4.20.1.1.{idx}", TAG_IP_ADDRESS, addr.packed)
            put(f"1.3.6.1.2.1.4.20.1.2.{idx}", TAG_INTEGER, if_index)
            put(f"1.3.6.1.2.1.4.20.1.3.{idx}", TAG_IP_ADDRESS, mask.packed)
            put(f"1.3.6.1.2.1.4.20.1.4.{idx}", TAG_INTEGER, 1)
        kind = 1 if addr.version == 4 else 2
        idx = ".".join(map(str, (kind, len(addr.packed), *addr.packed)))
        ipa = "1.3.6.1.2.1.4.34.1"
        put(f"{ipa}.3.{idx}", TAG_INTEGER, if_index)
        put(f"{ipa}.4.{idx}", TAG_INTEGER, 1)
        put(f"{ipa}.5.{idx}", TAG_OID, oid(f"1.3.6.1.2.1.4.32.1.5.{if_index}.{idx}.{a.prefix}"))
        put(f"{ipa}.6.{idx}", TAG_INTEGER, 2)
        put(f"{ipa}.7.{idx}", TAG_INTEGER, 1)
    if spec.chassis:
        ent = "1.3.6.1.2.1.47.1.1.1.1"
        rows = [(1, 0, 3, spec.chassis.get("descr", spec.chassis.get("model", "")), "Chassis",
                 spec.chassis.get("serial", ""), spec.chassis.get("model", "")),
                (2, 1, 6, "Power Supply 1", "PSU 1", spec.chassis.get("psu_serial", ""), "PWR-1100-AC")]
        for index, parent, cls, descr, name, serial, model in rows:
            put(f"{ent}.2.{index}", TAG_OCTET_STRING, descr)
            put(f"{ent}.3.{index}", TAG_OID, (0, 0))
            put(f"{ent}.4.{index}", TAG_INTEGER, parent)
            put(f"{ent}.5.{index}", TAG_INTEGER, cls)
            put(f"{ent}.7.{index}", TAG_OCTET_STRING, name)
            put(f"{ent}.10.{index}", TAG_OCTET_STRING, spec.chassis.get("software", ""))
            put(f"{ent}.11.{index}", TAG_OCTET_STRING, serial)
            put(f"{ent}.12.{index}", TAG_OCTET_STRING, spec.chassis.get("mfg", ""))
            put(f"{ent}.13.{index}", TAG_OCTET_STRING, model)
    lldp_loc = "1.0.8802.1.1.2.1.3.7.1"
    for p in spec.ports:
        if p.lldp_port is None:
            continue
        n = p.lldp_port
        put(f"{lldp_loc}.2.{n}", TAG_INTEGER, spec.lldp_port_id_subtype)
        put(f"{lldp_loc}.3.{n}", TAG_OCTET_STRING, str(p.if_index) if spec.lldp_port_id_subtype == 7 else p.name)
        put(f"{lldp_loc}.4.{n}", TAG_OCTET_STRING, p.descr)
    for r, nb in enumerate(spec.lldp, 1):
        local = by_name[nb.local_port]
        if local.lldp_port is None:
            raise ValueError(f"{spec.sys_name}: LLDP neighbour on {nb.local_port}, which has no lldp_port")
        idx = f"0.{local.lldp_port}.{r}"
        rem = "1.0.8802.1.1.2.1.4.1.1"
        put(f"{rem}.4.{idx}", TAG_INTEGER, 4)
        put(f"{rem}.5.{idx}", TAG_OCTET_STRING, _mac(nb.chassis_mac))
        put(f"{rem}.6.{idx}", TAG_INTEGER, nb.port_id_subtype)
        put(f"{rem}.7.{idx}", TAG_OCTET_STRING, nb.port_id)
        put(f"{rem}.8.{idx}", TAG_OCTET_STRING, nb.port_desc)
        put(f"{rem}.9.{idx}", TAG_OCTET_STRING, nb.sys_name)
        put(f"{rem}.10.{idx}", TAG_OCTET_STRING, f"{nb.sys_name} system")
        put(f"{rem}.11.{idx}", TAG_OCTET_STRING, b"\x28\x00")
        put(f"{rem}.12.{idx}", TAG_OCTET_STRING, b"\x28\x00")
    for r, nb in enumerate(spec.cdp, 1):
        idx = f"{by_name[nb.local_port].if_index}.{r}"
        cdp = "1.3.6.1.4.1.9.9.23.1.2.1.1"
        put(f"{cdp}.3.{idx}", TAG_INTEGER, 1)
        put(f"{cdp}.4.{idx}", TAG_OCTET_STRING, ipaddress.IPv4Address("10.0.0.254").packed)
        put(f"{cdp}.5.{idx}", TAG_OCTET_STRING, "Cisco IOS Software")
        put(f"{cdp}.6.{idx}", TAG_OCTET_STRING, nb.sys_name)
        put(f"{cdp}.7.{idx}", TAG_OCTET_STRING, nb.port_id)
        put(f"{cdp}.8.{idx}", TAG_OCTET_STRING, nb.port_desc or "cisco")
    for entry in spec.arp:
        if_index = by_name[entry.port].if_index
        addr = ipaddress.IPv4Address(entry.address)
        idx = f"{if_index}.{addr}"
        put(f"1.3.6.1.2.1.4.22.1.1.{idx}", TAG_INTEGER, if_index)
        put(f"1.3.6.1.2.1.4.22.1.2.{idx}", TAG_OCTET_STRING, _mac(entry.mac))
        put(f"1.3.6.1.2.1.4.22.1.3.{idx}", TAG_IP_ADDRESS, addr.packed)
        put(f"1.3.6.1.2.1.4.22.1.4.{idx}", TAG_INTEGER, entry.kind)
        pidx = f"{if_index}.1.4.{addr}"
        put(f"1.3.6.1.2.1.4.35.1.4.{pidx}", TAG_OCTET_STRING, _mac(entry.mac))
        put(f"1.3.6.1.2.1.4.35.1.5.{pidx}", TAG_TIMETICKS, 100)
        put(f"1.3.6.1.2.1.4.35.1.6.{pidx}", TAG_INTEGER, entry.kind)
        put(f"1.3.6.1.2.1.4.35.1.7.{pidx}", TAG_INTEGER, 1)
        put(f"1.3.6.1.2.1.4.35.1.8.{pidx}", TAG_INTEGER, 1)
    out.sort(key=lambda vb: vb[0])
    return out


CORE_VLAN1_MAC = "70:1f:53:aa:00:01"
ACC2_BASE_MAC = "44:4c:a8:bb:00:00"
ACC3_BASE_MAC = "f4:cc:55:cc:00:00"


def lab_switches() -> list[DeviceSpec]:
    """Three switches that see each other over LLDP (a triangle), plus a CDP-only router on sw-core-1."""
    core_ports = [Port(1, "Vl1", "Vlan1", 53, CORE_VLAN1_MAC, 1000),
                  *[Port(8 + n, f"Gi1/0/{n}", f"GigabitEthernet1/0/{n}", 6, f"70:1f:53:aa:01:{n:02x}", 1000,
                         alias={1: "to sw-acc-2", 2: "to sw-acc-3", 8: "WAN edge"}.get(n, ""), oper=1 if n in
                         (1, 2, 8) else 2, lldp_port=8 + n) for n in range(1, 9)],
                  Port(40, "Lo0", "Loopback0", 24, None, 8000),
                  Port(50, "Vl10", "Vlan10", 53, CORE_VLAN1_MAC, 1000)]
    core = DeviceSpec(
        "sw-core-1", "1.3.6.1.4.1.9.1.2494",
        "Cisco IOS Software [Bengaluru], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.6.4, RELEASE "
        "SOFTWARE (fc1)\r\nTechnical Support: http://www.cisco.com/techsupport\r\nCopyright (c) 1986-2022 by "
        "Cisco Systems, Inc.\r\nCompiled Sun 14-Aug-22 08:25 by mcpre",
        core_ports,
        addresses=[Address("10.0.0.1", 24, "Vl1"), Address("10.255.0.1", 32, "Lo0"), Address("10.10.0.1", 24, "Vl10"),
                   Address("2001:db8:0:10::1", 64, "Vl10")],
        lldp=[Neighbour("Gi1/0/1", "sw-acc-2", "Ethernet1", 5, "to sw-core-1", ACC2_BASE_MAC),
              Neighbour("Gi1/0/2", "sw-acc-3", "513", 7, "ge-0/0/0", ACC3_BASE_MAC)],
        cdp=[Neighbour("Gi1/0/1", "sw-acc-2", "Ethernet1", port_desc="Arista"),
             Neighbour("Gi1/0/8", "rtr-edge-1.example.net", "GigabitEthernet0/0/1", port_desc="cisco ISR4331/K9")],
        arp=[ArpEntry("Vl1", "10.0.0.2", "44:4c:a8:bb:00:63"), ArpEntry("Vl1", "10.0.0.3", "f4:cc:55:cc:00:21"),
             ArpEntry("Vl10", "10.10.0.50", "52:54:00:12:34:56"), ArpEntry("Vl10", "10.10.0.99",
                                                                            "52:54:00:12:34:99", kind=2)],
        chassis={"serial": "FOC2231X0AB", "model": "C9300-48P", "mfg": "Cisco Systems Inc.",
                 "descr": "C9300-48P chassis", "psu_serial": "DTN2231V1AA", "software": "17.6.4"},
        location="Lab row 1 rack 1",
    )
    acc2_ports = [*[Port(n, f"Ethernet{n}", f"Ethernet{n}", 6, f"44:4c:a8:bb:00:{n:02x}", 10000,
                         alias={1: "uplink core", 2: "to sw-acc-3"}.get(n, ""), oper=1 if n <= 2 else 2,
                         lldp_port=n) for n in range(1, 7)],
                  Port(999001, "Management1", "Management1", 6, "44:4c:a8:bb:00:63", 1000, lldp_port=7)]
    acc2 = DeviceSpec(
        "sw-acc-2", "1.3.6.1.4.1.30065.1.3011.7050.3741.48",
        "Arista Networks EOS version 4.28.3M running on an Arista Networks DCS-7050SX3-48YC8",
        acc2_ports,
        addresses=[Address("10.0.0.2", 24, "Management1")],
        lldp=[Neighbour("Ethernet1", "sw-core-1", "Gi1/0/1", 5, "GigabitEthernet1/0/1", CORE_VLAN1_MAC),
              Neighbour("Ethernet2", "sw-acc-3", "514", 7, "ge-0/0/1", ACC3_BASE_MAC),
              Neighbour("Management1", "oob-sw-1", "Gi0/24", 5, "GigabitEthernet0/24", "00:1b:54:dd:00:00")],
        arp=[ArpEntry("Management1", "10.0.0.1", CORE_VLAN1_MAC)],
        chassis={"serial": "JPE19181234", "model": "DCS-7050SX3-48YC8", "mfg": "Arista Networks",
                 "descr": "DCS-7050SX3-48YC8 48x25G 8x100G", "software": "4.28.3M"},
        location="Lab row 1 rack 2",
    )
    acc3_ports = [Port(513, "ge-0/0/0", "ge-0/0/0", 6, "f4:cc:55:cc:00:03", 1000, alias="uplink core",
                       lldp_port=513),
                  Port(514, "ge-0/0/1", "ge-0/0/1", 6, "f4:cc:55:cc:00:04", 1000, alias="to sw-acc-2",
                       lldp_port=514),
                  Port(515, "ge-0/0/2", "ge-0/0/2", 6, "f4:cc:55:cc:00:05", 1000, oper=2, lldp_port=515),
                  Port(33, "me0", "me0", 6, "f4:cc:55:cc:00:21", 1000),
                  Port(16, "lo0", "lo0", 24, None, 0)]
    acc3 = DeviceSpec(
        "sw-acc-3", "1.3.6.1.4.1.2636.1.1.1.2.63",
        "Juniper Networks, Inc. ex4300-48t Ethernet Switch, kernel JUNOS 21.4R3-S4.9, Build date: 2023-05-12 "
        "02:16:48 UTC Copyright (c) 1996-2023 Juniper Networks, Inc.",
        acc3_ports,
        addresses=[Address("10.0.0.3", 24, "me0"), Address("127.0.0.1", 8, "lo0")],
        lldp=[Neighbour("ge-0/0/0", "sw-core-1", "Gi1/0/2", 5, "GigabitEthernet1/0/2", CORE_VLAN1_MAC),
              Neighbour("ge-0/0/1", "sw-acc-2", "Ethernet2", 5, "to sw-acc-3", ACC2_BASE_MAC)],
        lldp_port_id_subtype=7,
        arp=[ArpEntry("me0", "10.0.0.1", CORE_VLAN1_MAC)],
        location="Lab row 1 rack 3",
    )
    return [core, acc2, acc3]


def ring(count: int, ports: int = 24, prefix: str = "bench-sw") -> list[DeviceSpec]:
    """``count`` switches in a ring: port 1 of switch i is cabled to port 2 of switch i+1 (LLDP both ways)."""
    specs = []
    for i in range(count):
        name = f"{prefix}-{i + 1:03d}"
        nxt, prev = f"{prefix}-{(i + 1) % count + 1:03d}", f"{prefix}-{(i - 1) % count + 1:03d}"
        base = f"02:42:{i // 256:02x}:{i % 256:02x}"
        plist = [Port(n, f"Ethernet{n}", f"Ethernet{n}", 6, f"{base}:00:{n:02x}", 10000, lldp_port=n,
                      oper=1 if n <= 2 else 2) for n in range(1, ports + 1)]
        plist.append(Port(1000, "Management1", "Management1", 6, f"{base}:01:00", 1000, lldp_port=ports + 1))
        plist.append(Port(2000, "Vlan10", "Vlan10", 53, f"{base}:02:00", 1000))
        mgmt = f"10.{100 + i // 250}.{i % 250}.10"
        specs.append(DeviceSpec(
            name, "1.3.6.1.4.1.30065.1.3011.7050.3741.48",
            "Arista Networks EOS version 4.28.3M running on an Arista Networks DCS-7050SX3-48YC8", plist,
            addresses=[Address(mgmt, 24, "Management1"), Address(f"172.16.{i % 250}.1", 24, "Vlan10")],
            lldp=[Neighbour("Ethernet1", nxt, "Ethernet2", 5, "Ethernet2"),
                  Neighbour("Ethernet2", prev, "Ethernet1", 5, "Ethernet1")],
            arp=[ArpEntry("Vlan10", f"172.16.{i % 250}.{h}", f"52:54:00:{i % 256:02x}:00:{h:02x}")
                 for h in range(20, 30)],
            chassis={"serial": f"JPE{i:08d}", "model": "DCS-7050SX3-48YC8", "mfg": "Arista Networks"},
        ))
    return specs


@contextlib.contextmanager
def serving(specs: Sequence[DeviceSpec], addresses: Sequence[str], community: str = "public") -> Iterator[
        SnmpsimAgents]:
    with SnmpsimAgents([SimAgent(a, device_varbinds(s)) for a, s in zip(addresses, specs, strict=True)],
                       community) as agents:
        yield agents


def record_snmpd() -> str:
    """What SNMP discovery reads from a fresh snmpd (system group and every table), as .snmprec text."""
    import asyncio

    from discovery.credentials import SecretRef, SnmpProfile
    from discovery.snmp.collector import SnmpCollector

    with SnmpdAgent() as agent:
        os.environ["CMDB_RECORD_COMMUNITY"] = agent.community
        profile = SnmpProfile("record", "2c", community=SecretRef("record", "community", env="CMDB_RECORD_COMMUNITY"),
                              port=agent.port)
        raw = asyncio.run(SnmpCollector([profile]).read(agent.host))
        del os.environ["CMDB_RECORD_COMMUNITY"]
    return snmprec.dumps(raw.varbinds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write-lab", help="write the lab switches' .snmprec files")
    w.add_argument("directory", type=Path)
    sub.add_parser("ensure-snmpsim", help="create the snmpsim venv if missing and print its python")
    r = sub.add_parser("record-snmpd", help="start snmpd, read it as SNMP discovery does, write the var-binds")
    r.add_argument("file", type=Path)
    sub.add_parser("snmpd", help="run snmpd until interrupted; prints its address and secrets")
    s = sub.add_parser("snmpsim", help="serve .snmprec files on 127.0.1.1, 127.0.1.2 ... until interrupted")
    s.add_argument("files", nargs="+", type=Path)
    s.add_argument("--community", default="public")
    args = parser.parse_args(argv)
    if args.cmd == "write-lab":
        args.directory.mkdir(parents=True, exist_ok=True)
        for spec in lab_switches():
            path = args.directory / f"{spec.sys_name}.snmprec"
            path.write_text(snmprec.dumps(device_varbinds(spec)))
            print(path)
        return 0
    if args.cmd == "ensure-snmpsim":
        print(ensure_snmpsim())
        return 0
    if args.cmd == "record-snmpd":
        args.file.write_text(record_snmpd())
        print(args.file)
        return 0
    stop = False

    def interrupted(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    if args.cmd == "snmpd":
        with SnmpdAgent() as agent:
            print(f"snmpd on {agent.host}:{agent.port} community={agent.community} v3 user={agent.v3_user} "
                  f"auth(SHA)={agent.auth_key} priv(AES)={agent.priv_key}", flush=True)
            while not stop:
                time.sleep(0.2)
        return 0
    served = [SimAgent(f"127.0.1.{n}", snmprec.load(f)) for n, f in enumerate(args.files, 1)]
    with SnmpsimAgents(served, args.community) as sim:
        for one, f in zip(served, args.files, strict=True):
            print(f"{one.address}:{sim.port} {f}", flush=True)
        while not stop:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
