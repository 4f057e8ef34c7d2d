"""Fake network devices for tests: fakenos SSH simulators on loopback addresses, in their own process.

fakenos (https://github.com/fakenos/fakenos) answers netmiko over a real paramiko SSH server with
canned command outputs for ~40 platforms. Each device here listens on its own 127.x address, all on
one port, so a credential profile's single port fits every device (fakenos refuses a port twice in
one instance, so each device gets its own instance). A device may replace canned outputs with its
own (``outputs``: command -> text), e.g. to make devices each other's CDP/LLDP neighbours, and may
have its own RSA host key (``host_key_file``) so tests can change a device's key.

Run::

    python scripts/fakenos_devices.py SPEC.json     # prints READY, runs until SIGTERM or stdin closes

SPEC::

    {"devices": [{"name": "sw1", "platform": "cisco_ios", "address": "127.0.5.1", "port": 2222,
                  "username": "netops", "password": "...", "host_key_file": null,
                  "outputs": {"show version": "..."}}]}

From tests: ``with FakeDevices(spec, workdir) as lab: ...`` starts the process, waits until every
device accepts TCP connections (bounded), and kills the process on exit, even after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from loopback_ports import free_common_port

READY = "READY"


def free_port(addresses: Iterable[str]) -> int:
    """A TCP port free on every one of ``addresses``."""
    return free_common_port(addresses, "tcp")


def write_host_key(path: Path) -> Path:
    """A new 2048-bit RSA host key (fakenos's server takes RSA keys only), mode 0600."""
    import paramiko

    paramiko.RSAKey.generate(2048).write_private_key_file(str(path))
    path.chmod(0o600)
    return path


def _inventory(device: dict[str, Any]) -> dict[str, Any]:
    server_cfg: dict[str, Any] = {"address": device["address"], "timeout": 1}
    if device.get("host_key_file"):
        server_cfg["ssh_key_file"] = device["host_key_file"]
    host: dict[str, Any] = {
        "username": device["username"], "password": device["password"], "port": int(device["port"]),
        "platform": device["platform"],
        "server": {"plugin": "ParamikoSshServer", "configuration": server_cfg},
    }
    outputs = device.get("outputs") or {}
    if outputs:
        host["nos"] = {"plugin": device["platform"], "configuration": {"commands": {
            cmd: {"output": text.rstrip("\n"), "help": f"lab output of {cmd}"} for cmd, text in outputs.items()
        }}}
    return {"hosts": {device["name"]: host}}


def serve(spec: dict[str, Any]) -> None:
    """Starts every device, prints READY and serves until SIGTERM/SIGINT or until stdin closes.

    The process then exits at once: a simulator has nothing to save, and fakenos's own stop waits
    for each open connection's threads (seconds per device)."""
    from fakenos import FakeNOS

    for device in spec["devices"]:
        FakeNOS(inventory=_inventory(device)).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))

    def watch_stdin() -> None:  # the parent died or closed the pipe: stop too
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(READY, flush=True)
    threading.Event().wait()


class FakeDevices:
    """The simulator process for one spec; a context manager that always kills it."""

    def __init__(self, spec: dict[str, Any], workdir: Path, start_timeout: float = 30.0) -> None:
        self.spec = spec
        self.workdir = Path(workdir)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = self.workdir / "fakenos.log"

    def start(self) -> FakeDevices:
        self.workdir.mkdir(parents=True, exist_ok=True)
        spec_path = self.workdir / "fakenos-spec.json"
        spec_path.write_text(json.dumps(self.spec))
        spec_path.chmod(0o600)
        log = self.log_path.open("a")
        self.proc = subprocess.Popen([sys.executable, __file__, str(spec_path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        try:
            self._wait_ready(deadline)
            for device in self.spec["devices"]:
                self._wait_listening(device["address"], int(device["port"]), deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, deadline: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fakenos exited with {self.proc.returncode}; see {self.log_path}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready and self.proc.stdout.readline().strip() == READY:
                return
        raise TimeoutError(f"fakenos did not start within {self.start_timeout:g} s; see {self.log_path}")

    @staticmethod
    def _wait_listening(address: str, port: int, deadline: float) -> None:
        while True:
            try:
                with socket.create_connection((address, port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"fake device {address}:{port} does not accept connections") from None
                time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.terminate()
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        finally:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    def __enter__(self) -> FakeDevices:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    serve(json.loads(Path(sys.argv[1]).read_text()))
