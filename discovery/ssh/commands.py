"""Every command SSH host discovery runs on a host: this list and nothing else is ever executed.

Security teams review this module. The commands of ``HOST_COMMANDS`` (plus the optional certificate
scan) are joined by ``host_script`` into one POSIX shell script that is fed to ``sh -s`` on the
host's standard input over a single SSH channel: one process start on the host instead of one
session per command (an SSH session costs the host a login: ~80 ms each here), and no quoting
through the user's login shell, whatever it is. No command is built from data a host returned. The
only text that varies is the certificate scan, whose directories come from the operator's
``--cert-path`` options and are quoted with ``shlex.quote``. Each command runs with its standard input
closed and, when coreutils ``timeout`` is present, under ``timeout`` with the per-command limit; its
output and exit status are framed by marker lines carrying a random per-session token.

All commands only read. None needs root; where root sees more (the processes owning other users'
sockets, the DMI serial number) the command is marked ``root_helps`` and, only when the profile says
``sudo: true``, runs as ``sudo -n <command>`` (``-n``: never prompt, fail instead). Those commands are
single programs with fixed arguments so a sudoers rule can allow exactly them, for example::

    cmdb ALL=(root) NOPASSWD: /usr/bin/ss -tanpH, /usr/bin/cat /sys/class/dmi/id/product_serial

``optional`` commands may be missing or fail on some hosts (no systemd in a container, no DMI in a
VM); their failure is recorded but does not make the host's view incomplete. A required command
that fails makes the batch partial (``complete: false``): it refreshes what it saw and ages nothing.

``cmdb discover ssh --show-commands`` prints this list and the script.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

EXIT_NOT_FOUND = 127  # the shell's "command not found"


@dataclass(frozen=True)
class HostCommand:
    """One fixed command: ``text`` is exactly what the remote shell runs."""

    name: str
    text: str
    why: str
    optional: bool = False
    root_helps: bool = False

    def line(self, sudo: bool) -> str:
        """The text sent to the host: ``sudo -n`` in front only for root_helps commands of a sudo profile."""
        return f"sudo -n {self.text}" if sudo and self.root_helps else self.text


PACKAGES_TEXT = (
    "if command -v dpkg-query >/dev/null 2>&1; then echo '#dpkg'; "
    "dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n'; "
    "elif command -v rpm >/dev/null 2>&1; then echo '#rpm'; "
    "rpm -qa --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{VENDOR}\\n'; "
    "else exit 127; fi"
)

INSTANCE_ID_FILES = ("/sys/devices/virtual/dmi/id/board_asset_tag", "/run/cloud-init/instance-data.json")
INSTANCE_ID_TEXT = (
    f"for f in {' '.join(INSTANCE_ID_FILES)}; do "
    "if [ -r \"$f\" ]; then printf '==> %s\\n' \"$f\"; cat \"$f\"; fi; done"
)

HOST_COMMANDS: tuple[HostCommand, ...] = (
    HostCommand("hostname", "uname -n", "host name (the kernel's node name)"),
    HostCommand("fqdn", "hostname -f", "fully qualified name as the host resolves itself", optional=True),
    HostCommand("os_release", "cat /etc/os-release", "operating system name and version"),
    HostCommand("kernel", "uname -r", "kernel release"),
    HostCommand("cpu_count", "nproc --all", "number of CPUs"),
    HostCommand("memory", "grep MemTotal /proc/meminfo", "memory size"),
    HostCommand("partitions", "cat /proc/partitions", "block devices and sizes (whole disks are summed)"),
    HostCommand("virt", "systemd-detect-virt", "physical, virtual machine or container", optional=True),
    HostCommand("dmi", "cat /sys/class/dmi/id/sys_vendor /sys/class/dmi/id/product_name",
                "hardware vendor and model", optional=True),
    HostCommand("serial", "cat /sys/class/dmi/id/product_serial", "hardware serial number (root only)",
                optional=True, root_helps=True),
    HostCommand("instance_id", INSTANCE_ID_TEXT, "cloud instance id (EC2: DMI board asset tag or cloud-init "
                "instance data), so the host meets its cloud CI", optional=True),
    HostCommand("links", "ip -o link show", "interfaces, MAC addresses, state"),
    HostCommand("addrs", "ip -o addr show", "IP addresses per interface"),
    HostCommand("packages", PACKAGES_TEXT, "installed packages (dpkg or rpm)"),
    HostCommand("services", "systemctl list-units --type=service --state=running --no-legend --no-pager --plain",
                "running services (absent in most containers)", optional=True),
    HostCommand("sockets", "ss -tanpH", "TCP listeners and connections with their processes (root sees all)",
                root_helps=True),
    HostCommand("units", "grep -s -H -o '[^/]*[.]service$' /proc/[0-9]*/cgroup",
                "the systemd service each process belongs to (names the service behind a listener)", optional=True),
)

CERT_SUFFIXES = ("*.pem", "*.crt", "*.cer")
CERT_MAX_FILES = 500
CERT_MAX_BYTES = 256 * 1024


def certificate_command(paths: Sequence[str]) -> HostCommand:
    """Prints the certificate blocks (never a private key block) of the PEM files under ``paths``.

    Each file is announced by a ``==> path`` line; ``sed`` passes on only the lines between
    ``BEGIN CERTIFICATE`` and ``END CERTIFICATE``, so key material in a combined PEM file never
    leaves the host. At most 500 files of at most 256 KiB, three directory levels deep.
    """
    if not paths:
        raise ValueError("certificate_command needs at least one directory")
    names = " -o ".join(f"-name {shlex.quote(s)}" for s in CERT_SUFFIXES)
    dirs = " ".join(shlex.quote(p) for p in paths)
    text = (
        f"find {dirs} -maxdepth 3 -type f \\( {names} \\) -size -{CERT_MAX_BYTES // 1024}k 2>/dev/null"
        f" | head -n {CERT_MAX_FILES} | while IFS= read -r f; do printf '==> %s\\n' \"$f\";"
        " sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \"$f\"; done"
    )
    return HostCommand("certificates", text, "certificate files under the configured directories", optional=True)


def commands_for(cert_paths: Sequence[str] = ()) -> tuple[HostCommand, ...]:
    """The commands of one run: the fixed list, plus the certificate scan when directories are given."""
    return (*HOST_COMMANDS, certificate_command(cert_paths)) if cert_paths else HOST_COMMANDS


EXIT_TIMEOUT = 124  # coreutils timeout's status when the limit struck


_SIMPLE = re.compile(r"^[A-Za-z0-9_./=:, -]+$")


def host_script(commands: Sequence[HostCommand], *, sudo: bool, token: str, timeout: float) -> str:
    """The script fed to ``sh -s``: each command framed by ``@@<token> name`` and ``@@<token>-rc name status``
    on standard output (the begin marker on standard error too, to split the error text per command).
    A command that is one program with plain arguments runs as is; one with shell syntax runs under
    ``sh -c`` with its text quoted (one process fewer for the simple ones: it adds up over many hosts)."""
    if not token.isalnum():
        raise ValueError("the marker token must be alphanumeric")
    limit = max(1, round(timeout))
    lines = [f'if command -v timeout >/dev/null 2>&1; then T="timeout -k 2 {limit}"; else T=""; fi']
    for cmd in commands:
        text = cmd.line(sudo)
        run = f"$T {text}" if _SIMPLE.match(text) else f"$T sh -c {shlex.quote(text)}"
        lines.append(f"printf '\\n@@{token} %s\\n' {cmd.name}; printf '\\n@@{token} %s\\n' {cmd.name} >&2; "
                     f"{run} </dev/null; printf '\\n@@{token}-rc %s %s\\n' {cmd.name} \"$?\"")
    return "\n".join(lines) + "\n"
