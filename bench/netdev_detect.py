"""Device-type detection: ours (generic login, ``show version``, redispatch) beside netmiko's ``SSHDetect``.

Starts the fakenos lab of the netdev tests on 127.0.5.x (sw1 cisco_ios, leaf1 arista_eos, r1 juniper_junos,
ceos-stock arista_eos with canned output, ios-secret cisco_ios whose ``enable`` wants a secret, sw2 cisco_ios)
and, for each device, ``ROUNDS`` times: (a) ``DeviceSession`` without a device type, i.e. what ``cmdb
discover devices`` does (one login, detected and ready for commands); (b) ``SSHDetect.autodetect()`` alone;
(c) ``SSHDetect`` and then a session with the type it found (what adopting it would cost: it cannot hand its
connection on). Prints per device the type each found and the median seconds. ``python bench/netdev_detect.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "scripts")]

from fakenos_devices import FakeDevices  # noqa: E402  (scripts/)
from netmiko import ConnectHandler  # noqa: E402
from netmiko.ssh_autodetect import SSHDetect  # noqa: E402

from discovery.credentials import SecretRef, SshProfile  # noqa: E402
from discovery.hostkeys import KnownHosts  # noqa: E402
from discovery.netdev.session import DeviceSession  # noqa: E402
from discovery.outcomes import TargetError  # noqa: E402
from tests.integration.netdev.conftest import LAB, OTHER_DEVICES, USERNAME, device_spec, lab_outputs  # noqa: E402

ROUNDS = 3
DETECT_TIMEOUT = 60.0  # SSHDetect on a device it cannot place waits out its reads
PASSWORD = "bench-lab-password"


_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="attempt")


def timed(fn: Callable[[], str | None]) -> tuple[float, str]:
    """Seconds and the answer; an attempt still busy after DETECT_TIMEOUT counts as hung (SSHDetect waits for
    output that some devices never send)."""
    t0 = time.perf_counter()
    try:
        found = _POOL.submit(fn).result(timeout=DETECT_TIMEOUT) or "none"
    except FuturesTimeout:
        return DETECT_TIMEOUT, "hung"
    except (TargetError, Exception) as exc:
        found = f"error: {type(exc).__name__}"
        if "-v" in sys.argv:
            print(f"    {exc}", flush=True)
    return time.perf_counter() - t0, found


def main() -> int:
    from fakenos_devices import free_port

    chosen = [a for a in sys.argv[1:] if not a.startswith("-")]
    devices = {n: d for n, d in {**LAB, **OTHER_DEVICES}.items() if not chosen or n in chosen}
    port = free_port(d["address"] for d in devices.values())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        secret = work / "pw"
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)
        profile = SshProfile(name="lab", username=USERNAME, port=port,
                             password=SecretRef("lab", "password", file=str(secret)))
        known = KnownHosts(work / "known_hosts", trust_on_first_use=True)
        spec = {"devices": [device_spec(n, d["platform"], d["address"], port, PASSWORD,
                                        outputs=lab_outputs(n) if n in LAB else d["outputs"])
                            for n, d in devices.items()]}
        with FakeDevices(spec, work):
            print(f"{'device':12} {'real':14} {'ours':>6} {'found':14} {'SSHDetect':>9} {'found':14} "
                  f"{'+login':>7} {'ratio':>6}")
            tot_ours = tot_sd = tot_full = 0.0
            for name, d in devices.items():
                addr = d["address"]

                def ours(addr: str = addr) -> str | None:
                    known.check_server(addr, port, 10)  # as the collector does: the key verified first
                    s = DeviceSession(addr, port, profile, known, device_type=None, connect_timeout=10,
                                      command_timeout=10)
                    with s:
                        return s.device_type

                def detect(addr: str = addr) -> str | None:
                    args: dict[str, Any] = {"device_type": "autodetect", "host": addr, "port": port,
                                            "username": USERNAME, "password": PASSWORD, "conn_timeout": 10,
                                            "ssh_strict": False, "system_host_keys": False}
                    guesser = SSHDetect(**args)
                    best: str | None = guesser.autodetect()
                    guesser.connection.disconnect()
                    return best

                def detect_and_login(addr: str = addr) -> str | None:
                    best = detect(addr)
                    if best:
                        conn = ConnectHandler(device_type=best, host=addr, port=port, username=USERNAME,
                                              password=PASSWORD, conn_timeout=10)
                        conn.disconnect()
                    return best

                a = [timed(ours) for _ in range(ROUNDS)]
                b = [timed(detect)]
                b += [timed(detect) for _ in range(ROUNDS - 1) if b[0][1] != "hung"]
                c = [timed(detect_and_login) for _ in range(ROUNDS if b[0][1] != "hung" else 0)] or b
                ta, tb, tc = (statistics.median(t for t, _ in x) for x in (a, b, c))
                tot_ours, tot_sd, tot_full = tot_ours + ta, tot_sd + tb, tot_full + tc
                print(f"{name:12} {d['platform']:14} {ta:6.2f} {a[0][1]:14} {tb:9.2f} {b[0][1]:14} {tc:7.2f} "
                      f"{tc / ta:5.1f}x", flush=True)
            print(f"{'total':12} {'':14} {tot_ours:6.2f} {'':14} {tot_sd:9.2f} {'':14} {tot_full:7.2f} "
                  f"{tot_full / tot_ours:5.1f}x")
    return 0


if __name__ == "__main__":
    import faulthandler

    faulthandler.dump_traceback_later(1200, exit=True)  # a hang shows where it hangs
    code = main()
    sys.stdout.flush()
    os._exit(code)  # threads of hung attempts would keep the process alive
