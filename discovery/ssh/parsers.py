"""Pure parsers: the text of each command in ``commands.py`` -> typed facts.

Every parser takes the command's standard output and returns plain data; malformed output raises
``FactsParseError`` naming the command and the line, which the collector turns into a
``parse_error`` outcome for the host. Nothing here does I/O: the tests feed recorded outputs from
``tests/data/ssh``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from discovery.certificates import describe_certificate, pem_blocks


class FactsParseError(ValueError):
    """A command's output is not what its parser expects."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"command {command}: {message}")
        self.command = command


@dataclass(frozen=True)
class Address:
    """One IP address on an interface."""

    address: str
    prefix: int
    scope: str = "global"


@dataclass
class Link:
    """One network interface from ``ip -o link`` (and its addresses from ``ip -o addr``)."""

    index: int
    name: str
    kind: str  # link type: ether, loopback, none (tun), ...
    mac: str | None
    admin_up: bool
    oper_state: str  # UP, DOWN, UNKNOWN, LOWERLAYERDOWN, DORMANT ...
    addresses: list[Address] = field(default_factory=list)


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str = ""
    vendor: str = ""


@dataclass(frozen=True)
class Socket:
    """One TCP socket from ``ss -tanpH``; ``processes`` are (name, pid) pairs, empty when not visible."""

    state: str
    local_addr: str  # canonical IP, "0.0.0.0" / "::" for a wildcard
    local_port: int
    peer_addr: str
    peer_port: int
    processes: tuple[tuple[str, int], ...] = ()

    @property
    def process(self) -> str | None:
        return self.processes[0][0] if self.processes else None


@dataclass(frozen=True)
class CertFile:
    """A certificate found on the host: where, and its Certificate attributes."""

    path: str
    attrs: dict[str, Any]


# -- simple one-value commands ---------------------------------------------------------------------

def parse_hostname(text: str) -> str:
    name = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not name or any(c.isspace() for c in name):
        raise FactsParseError("hostname", f"expected one host name, got {text.strip()[:60]!r}")
    return name.lower()


def parse_fqdn(text: str, hostname: str) -> str | None:
    """The FQDN when ``hostname -f`` gave a dotted name for this host; None otherwise (localhost, no DNS)."""
    name = text.strip().lower().rstrip(".")
    if "." not in name or any(c.isspace() for c in name) or name.startswith("localhost"):
        return None
    return name if name.split(".", 1)[0] == hostname.split(".", 1)[0] else None


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs of os-release, quotes removed."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\$", "$").replace("\\\\", "\\")
        out[key.strip()] = value
    if "NAME" not in out and "ID" not in out:
        raise FactsParseError("os_release", "no NAME or ID line")
    return out


def parse_int(command: str, text: str) -> int:
    value = text.strip()
    if not value.isdigit():
        raise FactsParseError(command, f"expected a number, got {value[:40]!r}")
    return int(value)


def parse_meminfo_mb(text: str) -> int:
    m = re.search(r"MemTotal:\s+(\d+)\s*kB", text)
    if not m:
        raise FactsParseError("memory", "no 'MemTotal: N kB' line")
    return int(m.group(1)) // 1024


_NOT_DISKS = re.compile(r"^(loop|ram|zram|sr|fd|dm-|md\d+p|nbd)")


def parse_partitions_gb(text: str) -> int:
    """Sum of the whole disks in /proc/partitions (partitions, loop, RAM and device-mapper devices left out)."""
    sizes: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4 or not parts[2].isdigit():
            continue
        sizes[parts[3]] = int(parts[2])  # 1 KiB blocks
    if not sizes and text.strip() and "major" not in text:
        raise FactsParseError("partitions", "no 'major minor #blocks name' rows")
    names = set(sizes)
    total = 0
    for name, blocks in sizes.items():
        if _NOT_DISKS.match(name):
            continue
        if any(name != other and name.startswith(other) and re.fullmatch(r"p?\d+", name[len(other):])
               for other in names):
            continue  # a partition of a disk already counted
        total += blocks
    return total // (1024 * 1024)


def parse_virt(text: str) -> str:
    """``systemd-detect-virt``: ``none`` on bare metal, else the hypervisor or container kind."""
    value = text.strip().lower()
    return value or "none"


def parse_dmi(text: str) -> tuple[str | None, str | None]:
    """(vendor, model) from sys_vendor and product_name; placeholders like 'To be filled' become None."""
    lines = [clean_dmi(v) for v in text.splitlines()[:2]] + [None, None]
    return lines[0], lines[1]


_DMI_JUNK = re.compile(r"^(to be filled.*|not specified|not applicable|none|default string|system serial number|"
                       r"system product name|system manufacturer|o\.e\.m\.?|0+|x+|n/a|unknown|-)$", re.I)


def clean_dmi(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if not value or _DMI_JUNK.match(value) else value


# -- interfaces ------------------------------------------------------------------------------------

_LINK = re.compile(r"^(\d+):\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>(.*)$")


def parse_links(text: str) -> list[Link]:
    """``ip -o link show``: one line per interface (continuation shown as a backslash)."""
    links: list[Link] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _LINK.match(line.strip())
        if not m:
            raise FactsParseError("links", f"unexpected line {line[:80]!r}")
        index, name, flags, rest = int(m.group(1)), m.group(2), m.group(3).split(","), m.group(4)
        state = re.search(r"\bstate\s+(\S+)", rest)
        lt = re.search(r"link/(\S+)(?:\s+([0-9a-fA-F:]{11,}))?", rest)
        kind = lt.group(1) if lt else "none"
        mac = lt.group(2).lower() if lt and lt.group(2) else None
        links.append(Link(index, name, kind, mac, "UP" in flags, state.group(1) if state else "UNKNOWN"))
    if not links and text.strip():
        raise FactsParseError("links", "no interfaces")
    return links


_ADDR = re.compile(r"^(\d+):\s+(\S+)\s+(inet6?)\s+([0-9a-fA-F.:]+)/(\d+)(.*)$")


def parse_addrs(text: str) -> list[tuple[str, Address]]:
    """``ip -o addr show``: (interface name, address) pairs."""
    out: list[tuple[str, Address]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _ADDR.match(line.strip())
        if not m:
            raise FactsParseError("addrs", f"unexpected line {line[:80]!r}")
        scope = re.search(r"\bscope\s+(\S+)", m.group(6))
        try:
            addr = str(ipaddress.ip_address(m.group(4)))
        except ValueError:
            raise FactsParseError("addrs", f"bad address in {line[:80]!r}") from None
        out.append((m.group(2).split("@", 1)[0], Address(addr, int(m.group(5)), scope.group(1) if scope else "global")))
    return out


def attach_addresses(links: list[Link], addrs: list[tuple[str, Address]]) -> list[Link]:
    by_name = {link.name: link for link in links}
    for name, addr in addrs:
        link = by_name.get(name)
        if link is not None and addr not in link.addresses:
            link.addresses.append(addr)
    return links


# -- packages and services -------------------------------------------------------------------------

def parse_packages(text: str) -> tuple[str, list[Package]]:
    """(manager, packages) from the dpkg or rpm branch of the packages command; only installed ones."""
    lines = text.splitlines()
    if not lines or lines[0].strip() not in ("#dpkg", "#rpm"):
        raise FactsParseError("packages", "the first line must say #dpkg or #rpm")
    manager = lines[0].strip()[1:]
    seen: set[str] = set()
    out: list[Package] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 4:
            raise FactsParseError("packages", f"expected 4 tab-separated fields, got {line[:80]!r}")
        if manager == "dpkg":
            status, name, version, arch = parts
            if status.strip()[:2] not in ("ii", "hi"):  # removed, half-installed, config-files only
                continue
            vendor = ""
        else:
            name, version, arch, vendor = parts
            if vendor.strip() == "(none)":
                vendor = ""
            if name == "gpg-pubkey":  # rpm's imported signing keys, not software
                continue
        name = name.strip()
        if not name or name in seen:  # multi-arch duplicates (libc6:amd64 and libc6:i386): first wins
            continue
        seen.add(name)
        out.append(Package(name, version.strip(), arch.strip(), vendor.strip()))
    return manager, out


def parse_services(text: str) -> list[str]:
    """Running unit names from ``systemctl list-units --plain --no-legend``."""
    out: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].endswith(".service"):
            out.append(parts[0])
    return sorted(set(out))


def parse_units(text: str) -> dict[int, str]:
    """pid -> systemd service from ``grep -H -o`` over /proc/<pid>/cgroup (cgroup v1 repeats a pid: same unit)."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        m = re.match(r"^/proc/(\d+)/cgroup:(.+\.service)$", line.strip())
        if m:
            out.setdefault(int(m.group(1)), m.group(2))
    return out


# -- sockets ---------------------------------------------------------------------------------------

_PROC = re.compile(r'\("(.*?)",pid=(\d+),fd=\d+\)')


def split_endpoint(text: str) -> tuple[str, int | None]:
    """``ss`` address:port -> (canonical IP, port); ``*`` and ``0.0.0.0`` are wildcards, port ``*`` is None."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]
    if host == "*":
        host = "::"
    addr = ipaddress.ip_address(host)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr), (int(port) if port.isdigit() else None)


def parse_sockets(text: str) -> list[Socket]:
    """``ss -tanpH``: State Recv-Q Send-Q Local Peer [users:((name,pid,fd),...)]."""
    out: list[Socket] = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if not parts:
            continue
        if len(parts) < 5:
            raise FactsParseError("sockets", f"expected state, queues and two addresses in {line[:80]!r}")
        state = parts[0]
        try:
            local, lport = split_endpoint(parts[3])
            peer, pport = split_endpoint(parts[4])
        except ValueError:
            raise FactsParseError("sockets", f"bad address in {line[:80]!r}") from None
        if lport is None:
            continue
        procs = tuple((name, int(pid)) for name, pid in _PROC.findall(parts[5] if len(parts) > 5 else ""))
        out.append(Socket(state, local, lport, peer, pport or 0, tuple(dict.fromkeys(procs))))
    return out


# -- certificates ----------------------------------------------------------------------------------

def parse_certificates(text: str) -> tuple[list[CertFile], list[str]]:
    """(certificates, problems) from the certificate scan: ``==> path`` then that file's PEM blocks."""
    files: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("==> "):
            files.append((line[4:], []))
        elif files:
            files[-1][1].append(line)
    found: list[CertFile] = []
    problems: list[str] = []
    for path, body in files:
        for block in pem_blocks("\n".join(body)):
            try:
                found.append(CertFile(path, describe_certificate(block)))
            except ValueError as exc:
                problems.append(f"{path}: not a readable certificate ({exc})")
    return found, problems


EC2_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")


def parse_instance_id(text: str) -> str | None:
    """The EC2 instance id from the instance-id command: ``==> path`` then that file's content. The DMI
    board asset tag (Nitro instances) holds it bare; cloud-init's instance-data.json as ``v1.instance_id``.
    Anything that is not an EC2 id (another cloud's, a vendor's asset tag) is no id: None."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("==> "):
            current = sections.setdefault(line[4:].strip(), [])
        elif current is not None:
            current.append(line)
    for path, lines in sections.items():
        if path.endswith("board_asset_tag"):
            tag = "\n".join(lines).strip()
            if EC2_INSTANCE_ID.match(tag):
                return tag
    for path, lines in sections.items():
        if path.endswith(".json"):
            try:
                doc = json.loads("\n".join(lines))
            except ValueError:
                raise FactsParseError("instance_id", f"{path} is not valid JSON") from None
            v1 = doc.get("v1") if isinstance(doc, dict) else None
            value = (v1.get("instance_id") or v1.get("instance-id")) if isinstance(v1, dict) else None
            if isinstance(value, str) and EC2_INSTANCE_ID.match(value.strip()):
                return value.strip()
    return None
