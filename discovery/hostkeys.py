"""Host-key verification for every SSH connection discovery makes (hosts and network devices).

Keys are checked against a known_hosts file. A host not in it is refused, unless the run asked to
trust on first use: then its key is added to the file and its fingerprint is recorded on the CI
(``ssh_host_key``). A key that differs from the recorded one always refuses the connection with a
``host_key_changed`` outcome and a warning in the log: nothing is written for that host. There is
no silent auto-accept.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import threading
from pathlib import Path

import paramiko

from discovery.outcomes import Outcome, TargetError

log = logging.getLogger("cmdb.discovery.ssh")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: ``SHA256:`` and the unpadded base64 of the key blob's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_entry(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    """One known_hosts file shared by a run's connections (thread-safe)."""

    def __init__(self, path: Path | str, trust_on_first_use: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.tofu = trust_on_first_use
        self._lock = threading.Lock()
        self._keys = paramiko.HostKeys()
        if self.path.exists():
            try:
                self._keys.load(str(self.path))
            except (OSError, paramiko.SSHException) as exc:
                raise TargetError(Outcome.ERROR, f"known_hosts file {self.path} cannot be read: {exc}") from exc
        elif not trust_on_first_use:
            log.warning("known_hosts file %s does not exist: every host will be refused (use trust on first use "
                        "to record keys)", self.path)

    def verify(self, host: str, port: int, key: paramiko.PKey) -> str:
        """The key's fingerprint when it is trusted; raises TargetError otherwise."""
        entry = host_entry(host, port)
        with self._lock:
            known = self._keys.lookup(entry)
            if known is not None and key.get_name() in known:
                if known[key.get_name()] == key:
                    return fingerprint(key)
                raise self.changed(entry, key, known[key.get_name()])
            if known is not None and known.keys():
                log.warning("SSH host %s offered a %s key; %s records only %s; connection refused", entry,
                            key.get_name(), self.path, ", ".join(known.keys()))
                raise TargetError(Outcome.HOST_KEY_CHANGED,
                                  f"host {entry} offered a {key.get_name()} key but {self.path} records "
                                  f"{', '.join(known.keys())}; verify the host and update known_hosts")
            if not self.tofu:
                raise TargetError(Outcome.HOST_KEY_UNKNOWN,
                                  f"host {entry} is not in {self.path} (key {fingerprint(key)}); add it, or run with"
                                  " trust on first use")
            self._keys.add(entry, key.get_name(), key)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.write(f"{entry} {key.get_name()} {key.get_base64()}\n")
            self.path.chmod(0o600)
            log.info("trusted SSH host key of %s on first use: %s", entry, fingerprint(key))
            return fingerprint(key)

    def changed(self, entry: str, offered: paramiko.PKey, recorded: paramiko.PKey) -> TargetError:
        """Logs the alert for a changed host key and returns the error to raise. Also used for paramiko's
        own ``BadHostKeyException``, raised when ``prepare`` loaded the recorded key into the client."""
        log.warning("SSH host key of %s CHANGED: recorded %s, offered %s; connection refused", entry,
                    fingerprint(recorded), fingerprint(offered))
        return TargetError(Outcome.HOST_KEY_CHANGED,
                           f"host key of {entry} changed (offered {fingerprint(offered)}, recorded "
                           f"{fingerprint(recorded)} in {self.path}); if the change is expected,"
                           f" remove the old entry with ssh-keygen -R '{entry}' -f {self.path}")

    def policy(self) -> paramiko.MissingHostKeyPolicy:
        """For ``SSHClient.set_missing_host_key_policy``: unknown hosts go through ``verify``."""
        outer = self

        class _Policy(paramiko.MissingHostKeyPolicy):
            def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
                host, port = hostname, 22
                if hostname.startswith("[") and "]:" in hostname:
                    host, _, p = hostname[1:].partition("]:")
                    port = int(p)
                outer.verify(host, port, key)

        return _Policy()

    def prepare(self, client: paramiko.SSHClient) -> None:
        """Loads the known keys into ``client`` and installs the verifying policy."""
        with self._lock:
            for entry in list(self._keys):
                for ktype, key in self._keys[entry].items():
                    client.get_host_keys().add(entry, ktype, key)
        client.set_missing_host_key_policy(self.policy())

    def check_server(self, host: str, port: int, timeout: float) -> str:
        """Fetches the server's host key without logging in and verifies it (for netmiko, which takes
        only a known_hosts file); returns the fingerprint."""
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise TargetError(Outcome.TIMEOUT, f"{host}:{port}: SSH connect timed out after {timeout:g} s") from exc
        except ConnectionRefusedError as exc:
            raise TargetError(Outcome.REFUSED, f"{host}:{port}: SSH connection refused") from exc
        except OSError as exc:
            raise TargetError(Outcome.UNREACHABLE, f"{host}:{port}: {exc.strerror or exc}") from exc
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = timeout
            transport.start_client(timeout=timeout)
            key = transport.get_remote_server_key()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TargetError(Outcome.ERROR, f"{host}:{port}: SSH handshake failed: {exc}") from exc
        finally:
            transport.close()
        return self.verify(host, port, key)


def default_known_hosts_path() -> Path:
    """The known_hosts file SSH discovery of hosts and of devices share by default."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("cmdb")) / "known_hosts"
