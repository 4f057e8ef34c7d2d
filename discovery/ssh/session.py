"""One SSH login to a host, with verified host key, a named credential profile and bounded time.

Errors (paramiko, socket) become ``TargetError`` at this boundary:

=================================  ===================
connect timeout, no banner         timeout
connection refused                 refused
no route, DNS failure              unreachable
authentication refused, bad key    auth_failed
host key differs from known one    host_key_changed (WARNING log)
host key not known, no TOFU        host_key_unknown
anything else in the handshake     error
=================================  ===================

Secrets (key passphrase, password) are resolved at the moment of use and handed to paramiko only;
no message here quotes them. The commands run as one script on one channel (``run_commands``).
"""

from __future__ import annotations

import errno
import logging
import secrets
import select
import socket
import time
from collections.abc import Sequence
from typing import Any

import paramiko

from cmdb.errors import CmdbError
from discovery.credentials import SshProfile
from discovery.hostkeys import KnownHosts, fingerprint, host_entry
from discovery.outcomes import Outcome, TargetError
from discovery.ssh.commands import HostCommand, host_script
from discovery.ssh.facts import CommandOutput, split_script_output

log = logging.getLogger("cmdb.discovery.ssh")

MAX_OUTPUT = 32 * 1024 * 1024
MAX_STDERR = 8 * 1024


def load_private_key(profile: SshProfile) -> paramiko.PKey | None:
    """The profile's private key (0600 file, optional passphrase); auth_failed when it cannot be opened."""
    try:
        path = profile.check_key_file()
    except CmdbError as exc:
        raise TargetError(Outcome.ERROR, str(exc), profile.name) from exc
    if path is None:
        return None
    try:
        passphrase = profile.passphrase.resolve().reveal() if profile.passphrase else None
    except CmdbError as exc:
        raise TargetError(Outcome.ERROR, str(exc), profile.name) from exc
    try:
        secret = passphrase.encode() if passphrase is not None else None
        return paramiko.PKey.from_path(path, passphrase=secret)  # type: ignore[call-arg]  # stubs lag paramiko 3.2
    except paramiko.PasswordRequiredException as exc:
        raise TargetError(Outcome.AUTH_FAILED, f"credential profile {profile.name!r}: key file {path} is encrypted "
                          "and the profile gives no passphrase; add passphrase: {env: ...}", profile.name) from exc
    except (paramiko.SSHException, ValueError, TypeError, OSError) as exc:
        raise TargetError(Outcome.AUTH_FAILED, f"credential profile {profile.name!r}: key file {path} cannot be "
                          f"opened ({type(exc).__name__}); check the passphrase and the key format",
                          profile.name) from exc


class HostSession:
    """A logged-in SSH client; use ``HostSession.open(...)`` as a context manager."""

    def __init__(self, client: paramiko.SSHClient, host: str, port: int, profile: SshProfile) -> None:
        self.client = client
        self.host = host
        self.port = port
        self.profile = profile
        transport = client.get_transport()
        assert transport is not None
        self.transport: paramiko.Transport = transport
        self.host_key = fingerprint(transport.get_remote_server_key())
        peer: Any = transport.getpeername()
        self.peer_address = str(peer[0]) if peer else host

    @classmethod
    def open(cls, host: str, profile: SshProfile, known_hosts: KnownHosts, *, port: int | None = None,
             connect_timeout: float = 10.0) -> HostSession:
        """Connects and logs in; raises TargetError with the outcome and the profile's name."""
        port = port or profile.port
        where = host_entry(host, port)
        pkey = load_private_key(profile)
        try:
            password = profile.password.resolve().reveal() if profile.password else None
        except CmdbError as exc:
            raise TargetError(Outcome.ERROR, str(exc), profile.name) from exc
        if pkey is None and password is None:
            raise TargetError(Outcome.ERROR, f"credential profile {profile.name!r} has neither key_file nor password",
                              profile.name)
        client = paramiko.SSHClient()
        known_hosts.prepare(client)
        try:
            client.connect(host, port=port, username=profile.username, pkey=pkey, password=password,
                           # paramiko waits for the key exchange with ``timeout`` and gives up silently when
                           # it ends first; a longer one lets the banner timeout report itself.
                           timeout=connect_timeout + 2, banner_timeout=connect_timeout, auth_timeout=connect_timeout,
                           channel_timeout=connect_timeout, allow_agent=False, look_for_keys=False)
        except TargetError as exc:  # from the host-key policy (unknown key without TOFU, changed key)
            client.close()
            exc.profile = profile.name
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise known_hosts.changed(where, exc.key, exc.expected_key) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise TargetError(Outcome.AUTH_FAILED, f"{where}: user {profile.username!r} of profile {profile.name!r} "
                              "was refused; check the key or password the profile names", profile.name) from exc
        except TimeoutError as exc:
            client.close()
            raise TargetError(Outcome.TIMEOUT, f"{where}: no SSH answer within {connect_timeout:g} s",
                              profile.name) from exc
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            client.close()
            refused = all(getattr(e, "errno", None) == errno.ECONNREFUSED for e in exc.errors.values())
            raise TargetError(Outcome.REFUSED if refused else Outcome.UNREACHABLE,
                              f"{where}: {'connection refused' if refused else 'unreachable'}; is sshd running there?",
                              profile.name) from exc
        except ConnectionRefusedError as exc:
            client.close()
            raise TargetError(Outcome.REFUSED, f"{where}: connection refused; is sshd running there?",
                              profile.name) from exc
        except socket.gaierror as exc:
            client.close()
            raise TargetError(Outcome.UNREACHABLE, f"{where}: name does not resolve ({exc.strerror})",
                              profile.name) from exc
        except OSError as exc:
            client.close()
            raise TargetError(Outcome.UNREACHABLE, f"{where}: {exc.strerror or exc}", profile.name) from exc
        except (paramiko.SSHException, EOFError) as exc:
            client.close()
            text = str(exc)
            slow = ("banner", "timeout", "timed out", "no existing session")
            outcome = Outcome.TIMEOUT if any(w in text.lower() for w in slow) else Outcome.ERROR
            message = (f"{where}: no SSH banner within {connect_timeout:g} s; is an SSH server listening there?"
                       if "banner" in text.lower() else f"{where}: SSH handshake failed: {text[:160]}")
            raise TargetError(outcome, message, profile.name) from exc
        return cls(client, host, port, profile)

    def __enter__(self) -> HostSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def run_commands(self, commands: Sequence[HostCommand], *, timeout: float = 30.0) -> dict[str, CommandOutput]:
        """Runs ``commands`` as one ``sh -s`` script (see ``commands.host_script``); each has ``timeout``
        seconds on the host, and the whole script at most the sum of them (a backstop when the host has
        no ``timeout`` program)."""
        token = secrets.token_hex(8)
        script = host_script(commands, sudo=self.profile.sudo, token=token, timeout=timeout)
        deadline = time.monotonic() + timeout * len(commands) + 5
        started = time.monotonic()
        try:
            chan = self.transport.open_session(timeout=timeout)
            chan.exec_command("sh -s")
            chan.sendall(script.encode())
            chan.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TargetError(Outcome.ERROR, f"{host_entry(self.host, self.port)}: cannot start the discovery "
                              f"commands: {exc}", self.profile.name) from exc
        out, err = bytearray(), bytearray()
        timed_out = False
        try:
            while True:
                while chan.recv_ready():
                    data = chan.recv(65536)
                    out += data[: max(0, MAX_OUTPUT - len(out))]
                while chan.recv_stderr_ready():
                    data = chan.recv_stderr(65536)
                    err += data[: max(0, MAX_STDERR * len(commands) - len(err))]
                if chan.eof_received or chan.closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                select.select([chan], [], [], min(remaining, 1.0))
        finally:
            chan.close()
        outputs = split_script_output(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), token,
                                      [c.name for c in commands], stopped=timed_out)
        log.debug("%s: %d commands in %.3f s", host_entry(self.host, self.port), len(commands),
                  time.monotonic() - started)
        return outputs

