"""One netmiko session to one network device: verified host key, named credentials, bounded waits.

The host key is checked twice: ``KnownHosts.check_server`` fetches and verifies it before any
login (known_hosts, or trust on first use when the run allows it), then netmiko connects with
``ssh_strict=True`` against the same known_hosts file only (no system keys, no agent), so a key
that changes in between is refused as well. Secrets are read from the profile at the moment of
use and handed to paramiko, never to a log, a message or netmiko's session log (which stays off).

netmiko and paramiko exceptions become ``TargetError`` with an ``Outcome`` here and nowhere else.
When the device type is unknown the session logs in with netmiko's generic driver, reads ``show
version`` and re-dispatches to the matching driver (``platforms.detect_device_type``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
from typing import Any

import paramiko

from cmdb.errors import CmdbError
from discovery.credentials import SshProfile
from discovery.hostkeys import KnownHosts, fingerprint
from discovery.netdev.platforms import cli_rejection, detect_device_type, platform_for
from discovery.outcomes import Outcome, TargetError

log = logging.getLogger("cmdb.discovery.netdev")

class DeviceSession:
    """A logged-in CLI session; use as a context manager, then ``run`` commands."""

    def __init__(self, address: str, port: int, profile: SshProfile, known_hosts: KnownHosts, *,
                 device_type: str | None, connect_timeout: float, command_timeout: float) -> None:
        self.address = address
        self.port = port
        self.profile = profile
        self.known_hosts = known_hosts
        self.device_type = device_type
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.where = f"{address}:{port}"
        self._conn: Any = None

    # -- connecting --------------------------------------------------------------------------------
    def _connect_args(self) -> dict[str, Any]:
        """netmiko's arguments: the profile's password and/or its key, loaded here so that paramiko
        does not go looking for other keys (``look_for_keys``) or an agent."""
        prof = self.profile
        return {
            "host": self.address, "port": self.port, "username": prof.username,
            "password": prof.password.resolve().reveal() if prof.password else None,
            "pkey": self._private_key(), "use_keys": False,
            "allow_agent": False, "ssh_strict": True, "system_host_keys": False, "alt_host_keys": True,
            "alt_key_file": str(self.known_hosts.path), "conn_timeout": self.connect_timeout,
            "auth_timeout": self.connect_timeout, "banner_timeout": self.connect_timeout,
            "blocking_timeout": self.command_timeout, "timeout": self.command_timeout, "session_log": None,
        }

    def _private_key(self) -> paramiko.PKey | None:
        key_file = self.profile.check_key_file()
        if key_file is None:
            return None
        passphrase = self.profile.passphrase.resolve().reveal() if self.profile.passphrase else None
        load: Any = paramiko.PKey.from_path  # its stub names the argument wrongly; it takes bytes
        try:
            key: paramiko.PKey = load(key_file, passphrase.encode() if passphrase else None)
            return key
        except (paramiko.SSHException, ValueError, TypeError, OSError) as exc:
            raise TargetError(Outcome.AUTH_FAILED, f"{self.where}: the key file of profile {self.profile.name!r} "
                              f"cannot be opened ({type(exc).__name__}); check its passphrase and format",
                              self.profile.name) from exc

    def __enter__(self) -> DeviceSession:
        from netmiko import ConnectHandler, redispatch

        if self.device_type is not None:
            try:
                platform_for(self.device_type)  # an unsupported type fails before logging in
            except ValueError as exc:
                raise TargetError(Outcome.ERROR, f"{self.where}: profile {self.profile.name!r}: {exc}",
                                  self.profile.name) from exc
        try:
            if self.device_type is not None:
                self._conn = ConnectHandler(device_type=self.device_type, **self._connect_args())
            else:
                self._conn = ConnectHandler(device_type="generic", **self._connect_args())
                self.device_type = self._detect()
                redispatch(self._conn, self.device_type)
            if platform_for(self.device_type).enable:
                self._enable()
        except CmdbError:  # a refused target, a secret that cannot be read: already said well
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise self._translate(exc, "login") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Says ``exit`` and closes. netmiko's own clean-up first probes for configuration mode, which
        waits out a read timeout on some prompts; these sessions never configure, so it is skipped."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.cleanup = lambda command="exit": conn.write_channel(command + conn.RETURN)
            with contextlib.suppress(Exception):
                conn.disconnect()

    def _detect(self) -> str:
        conn = self._conn
        conn.set_base_prompt()
        conn.send_command("terminal length 0", read_timeout=self.command_timeout)
        text = conn.send_command("show version", read_timeout=self.command_timeout)
        if cli_rejection(text) and self._enable():  # some images answer it only when privileged
            text = conn.send_command("show version", read_timeout=self.command_timeout)
        device_type = detect_device_type(text)
        if device_type is None:
            raise TargetError(Outcome.PARSE_ERROR,
                              f"{self.where}: `show version` does not say a supported platform (cisco_ios, "
                              "arista_eos, juniper_junos, cisco_nxos); set device_type in the credential profile")
        log.debug("%s: detected %s", self.where, device_type)
        return device_type

    def _enable(self) -> bool:
        """Privileged mode when the device grants it without a secret (profiles hold none). When it
        asks for one, empty answers run out its attempts and the session goes on unprivileged; the
        discovery commands are user-level on real devices."""
        conn = self._conn
        if conn.check_enable_mode():
            return True
        answer = r"(?i)(ssword|[>#]\s*$)"
        conn.write_channel("enable" + conn.RETURN)
        out = conn.read_until_pattern(pattern=answer, read_timeout=self.command_timeout)
        for _ in range(3):
            if not re.search("ssword", out, re.IGNORECASE):
                break
            conn.write_channel(conn.RETURN)
            out = conn.read_until_pattern(pattern=answer, read_timeout=self.command_timeout)
        conn.set_base_prompt()
        privileged: bool = conn.check_enable_mode()
        if not privileged:
            log.info("%s: enable needs a secret; going on unprivileged", self.where)
        return privileged

    # -- commands ------------------------------------------------------------------------------------
    def run(self, command: str) -> str:
        """The command's output, without echo and prompt."""
        try:
            out: str = self._conn.send_command(command, read_timeout=self.command_timeout)
        except Exception as exc:
            raise self._translate(exc, f"`{command}`") from exc
        return out

    # -- errors --------------------------------------------------------------------------------------
    def _translate(self, exc: BaseException, step: str) -> TargetError:
        from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException, ReadTimeout

        where, name = self.where, self.profile.name
        if isinstance(exc, NetmikoAuthenticationException | paramiko.AuthenticationException):
            return TargetError(Outcome.AUTH_FAILED, f"{where}: authentication with profile {name!r} failed; check "
                               "its username and password or key", name)
        if isinstance(exc, ReadTimeout):
            return TargetError(Outcome.TIMEOUT, f"{where}: {step} gave no prompt within {self.command_timeout:g} s; "
                               "raise the command timeout for slow devices", name)
        cause = _root(exc)
        if isinstance(cause, paramiko.BadHostKeyException):
            return TargetError(Outcome.HOST_KEY_CHANGED, f"{where}: host key changed during {step} (offered "
                               f"{fingerprint(cause.key)}); verify the device and update {self.known_hosts.path}",
                               name)
        if isinstance(cause, paramiko.SSHException) and "known_hosts" in str(cause):
            return TargetError(Outcome.HOST_KEY_UNKNOWN, f"{where}: host key not in {self.known_hosts.path} at "
                               f"{step}; run again with trust on first use or add the key", name)
        if isinstance(cause, ConnectionRefusedError):
            return TargetError(Outcome.REFUSED, f"{where}: SSH connection refused", name)
        if isinstance(cause, TimeoutError | socket.timeout) or isinstance(exc, NetmikoTimeoutException):
            return TargetError(Outcome.TIMEOUT, f"{where}: no SSH answer during {step} within "
                               f"{self.connect_timeout:g} s", name)
        if isinstance(cause, OSError | EOFError):
            return TargetError(Outcome.UNREACHABLE, f"{where}: connection lost during {step} "
                               f"({type(cause).__name__})", name)
        if isinstance(exc, ValueError):
            return TargetError(Outcome.ERROR, f"{where}: netmiko could not drive the CLI during {step}: "
                               f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", name)
        return TargetError(Outcome.ERROR, f"{where}: {step} failed: {type(exc).__name__}", name)


def _root(exc: BaseException) -> BaseException:
    """The innermost chained exception: netmiko re-raises paramiko's and socket's errors as its own."""
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


def resolve_address(target: str, port: int, timeout: float) -> str:
    """The address to connect to: the target itself, or the first address its name resolves to."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in target else socket.AF_INET, target)
        return target
    except OSError:
        pass
    try:
        infos = socket.getaddrinfo(target, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetError(Outcome.UNREACHABLE, f"{target}: name does not resolve; give an address or fix DNS") from exc
    return str(infos[0][4][0])
