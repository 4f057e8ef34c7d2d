"""One host's facts: the outputs of the commands in ``commands.py`` assembled into ``HostFacts``.

``build_facts`` is pure (command outputs in, typed facts out) so it runs on recorded outputs in the
tests exactly as on a live session. A required command that failed to run is listed in ``failures``
and makes the host's view partial; an optional one only leaves its fact empty. Output of a required
command that does not parse is an error for the host (``FactsParseError`` -> ``parse_error``), not a
silently thinner view.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from discovery.ssh import parsers
from discovery.ssh.commands import EXIT_NOT_FOUND, EXIT_TIMEOUT, HOST_COMMANDS, HostCommand
from discovery.ssh.parsers import CertFile, FactsParseError, Link, Package, Socket

OPTIONAL = {c.name for c in HOST_COMMANDS if c.optional} | {"certificates"}


@dataclass
class CommandOutput:
    """What one command returned; ``exit_status`` is None when it did not finish (timeout)."""

    name: str
    exit_status: int | None
    stdout: str
    stderr: str = ""
    seconds: float = 0.0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.timed_out

    def problem(self) -> str:
        if self.timed_out:
            return "timed out (the per-command limit, --command-timeout)"
        if self.exit_status == EXIT_NOT_FOUND:
            return "not installed"
        tail = self.stderr.strip().splitlines()[-1][:120] if self.stderr.strip() else ""
        return f"exit {self.exit_status}" + (f": {tail}" if tail else "")


@dataclass
class HostFacts:
    """Everything discovery learned about one host, before it becomes CIs."""

    target: str
    address: str  # the IP the session was connected to (management_ip)
    hostname: str
    fqdn: str | None = None
    os_release: dict[str, str] = field(default_factory=dict)
    kernel: str | None = None
    cpu_count: int | None = None
    memory_mb: int | None = None
    disk_gb: int | None = None
    virt: str | None = None  # systemd-detect-virt: none, kvm, vmware, docker ...
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    instance_id: str | None = None  # the cloud's instance id when the host exposes it (EC2)
    links: list[Link] = field(default_factory=list)
    package_manager: str | None = None
    packages: list[Package] | None = None  # None: not known (the command failed)
    services: list[str] | None = None  # None: no systemd (or it failed)
    units: dict[int, str] = field(default_factory=dict)  # pid -> systemd service it runs in
    sockets: list[Socket] | None = None  # None: not known
    certificates: list[CertFile] = field(default_factory=list)
    cert_roots: list[str] = field(default_factory=list)  # the directories the certificate scan searched
    host_key: str | None = None
    profile: str | None = None
    collected_at: str = ""  # ISO UTC time the commands ran
    failures: dict[str, str] = field(default_factory=dict)  # required command -> what went wrong
    notes: dict[str, str] = field(default_factory=dict)  # optional command -> what went wrong

    @property
    def label(self) -> str:
        """The host's name on its Interfaces, SoftwareInstalls and Applications: the FQDN, else the host name,
        else (a host that calls itself localhost) the address discovery reached it on."""
        if self.fqdn:
            return self.fqdn
        if self.hostname.split(".", 1)[0] in ("localhost", "localhost6", "(none)", "ubuntu", "debian", "raspberrypi"):
            return f"{self.hostname}-{self.address}"
        return self.hostname

    @property
    def complete(self) -> bool:
        return not self.failures

    def own_addresses(self) -> set[str]:
        """Every address of the host, loopback included."""
        out = {a.address for link in self.links for a in link.addresses}
        out.add(self.address)
        return out

    def public_addresses(self) -> set[str]:
        """Addresses others can reach the host on: not on a loopback interface, not link-local."""
        out: set[str] = set()
        for link in self.links:
            if link.kind == "loopback":
                continue
            for a in link.addresses:
                ip = ipaddress.ip_address(a.address)
                if not ip.is_link_local:
                    out.add(a.address)
        return out

    def is_host_local(self, address: str) -> bool:
        """Whether ``address`` only means something on this host (loopback, not assigned to a real NIC)."""
        ip = ipaddress.ip_address(address)
        if ip.is_unspecified:
            return False
        return ip.is_loopback and address not in self.public_addresses()


def split_script_output(stdout: str, stderr: str, token: str, names: list[str], *,
                        stopped: bool = False) -> dict[str, CommandOutput]:
    """Cuts the output of ``commands.host_script`` into one ``CommandOutput`` per command.

    A command whose end marker is missing was cut off (the script was stopped at its deadline): it
    counts as timed out with what it printed so far; commands after it did not run and are absent.
    """
    begin = re.compile(rf"\n@@{token} (\S+)\n")
    end = re.compile(rf"\n@@{token}-rc (\S+) (\d+)\n")
    errors: dict[str, str] = {}
    marks = list(begin.finditer(stderr))
    for i, mark in enumerate(marks):
        stop = marks[i + 1].start() if i + 1 < len(marks) else len(stderr)
        errors[mark.group(1)] = stderr[mark.end():stop]
    out: dict[str, CommandOutput] = {}
    pos = 0
    while True:
        m = begin.search(stdout, pos)
        if m is None:
            break
        name = m.group(1)
        e = end.search(stdout, m.end())
        if e is None or e.group(1) != name:
            out[name] = CommandOutput(name, None, stdout[m.end():], errors.get(name, ""), timed_out=True)
            break
        status = int(e.group(2))
        out[name] = CommandOutput(name, status, stdout[m.end():e.start()], errors.get(name, ""),
                                  timed_out=status in (EXIT_TIMEOUT, 128 + 9))
        pos = e.end() - 1
    if stopped:
        for name in names:
            if name not in out:
                out[name] = CommandOutput(name, None, "", "", timed_out=True)
    return out


def build_facts(target: str, address: str, outputs: Mapping[str, CommandOutput], *, host_key: str | None = None,
                profile: str | None = None, collected_at: str = "",
                commands: tuple[HostCommand, ...] = HOST_COMMANDS, cert_roots: Sequence[str] = ()) -> HostFacts:
    """Parses every command's output; raises FactsParseError when the host cannot even be named."""
    failures: dict[str, str] = {}
    notes: dict[str, str] = {}

    def text(name: str) -> str | None:
        out = outputs.get(name)
        if out is None:
            return None
        if out.ok:
            return out.stdout
        (notes if name in OPTIONAL else failures)[name] = out.problem()
        return None

    for cmd in commands:
        if cmd.name not in outputs:
            (notes if cmd.name in OPTIONAL else failures)[cmd.name] = "not run"
    raw = text("hostname")
    if raw is None:
        raise FactsParseError("hostname", f"no host name ({failures.get('hostname', 'not run')})")
    hostname = parsers.parse_hostname(raw)
    facts = HostFacts(target=target, address=address, hostname=hostname, host_key=host_key, profile=profile,
                      collected_at=collected_at, failures=failures, notes=notes, cert_roots=list(cert_roots))

    def guarded(name: str, fn: Any) -> None:
        value = text(name)
        if value is None:
            return
        try:
            fn(value)
        except FactsParseError as exc:
            if name not in OPTIONAL:
                raise  # output we do not understand is an error with the host's name, never half-read data
            notes[name] = str(exc)

    def set_fqdn(v: str) -> None:
        facts.fqdn = parsers.parse_fqdn(v, hostname)

    def set_os(v: str) -> None:
        facts.os_release = parsers.parse_os_release(v)

    def set_kernel(v: str) -> None:
        facts.kernel = v.strip() or None

    def set_cpu(v: str) -> None:
        facts.cpu_count = parsers.parse_int("cpu_count", v)

    def set_mem(v: str) -> None:
        facts.memory_mb = parsers.parse_meminfo_mb(v)

    def set_disk(v: str) -> None:
        facts.disk_gb = parsers.parse_partitions_gb(v)

    def set_dmi(v: str) -> None:
        facts.vendor, facts.model = parsers.parse_dmi(v)

    def set_serial(v: str) -> None:
        facts.serial = parsers.clean_dmi(v.strip().splitlines()[0] if v.strip() else None)

    def set_instance_id(v: str) -> None:
        facts.instance_id = parsers.parse_instance_id(v)

    def set_packages(v: str) -> None:
        facts.package_manager, facts.packages = parsers.parse_packages(v)

    def set_services(v: str) -> None:
        facts.services = parsers.parse_services(v)

    def set_units(v: str) -> None:
        facts.units = parsers.parse_units(v)

    def set_sockets(v: str) -> None:
        facts.sockets = parsers.parse_sockets(v)

    def set_certs(v: str) -> None:
        facts.certificates, problems = parsers.parse_certificates(v)
        if problems:
            notes["certificates"] = "; ".join(problems[:3])

    for name, fn in (("fqdn", set_fqdn), ("os_release", set_os), ("kernel", set_kernel), ("cpu_count", set_cpu),
                     ("memory", set_mem), ("partitions", set_disk), ("dmi", set_dmi), ("serial", set_serial),
                     ("instance_id", set_instance_id), ("packages", set_packages), ("services", set_services),
                     ("units", set_units), ("sockets", set_sockets), ("certificates", set_certs)):
        guarded(name, fn)

    virt = outputs.get("virt")
    # systemd-detect-virt exits 1 when it prints "none" (bare metal): its answer is the text, not the status.
    if virt is not None and not virt.timed_out and virt.stdout.strip():
        facts.virt = parsers.parse_virt(virt.stdout)
        notes.pop("virt", None)

    links_text, addrs_text = text("links"), text("addrs")
    if links_text is not None:
        links = parsers.parse_links(links_text)
        if addrs_text is not None:
            parsers.attach_addresses(links, parsers.parse_addrs(addrs_text))
        facts.links = links
    return facts
