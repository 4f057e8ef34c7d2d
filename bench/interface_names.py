"""Our interface-name spelling (discovery.names) beside netutils' on every name in the recorded data.

Runs the transform tests that read ``tests/data`` (SNMP, netdev, NetBox) with the spelling function
wrapped to record what it is asked, then prints each distinct name with our long form, netutils'
``canonical_interface_name`` and whether ``abbreviated_interface_name`` of both agrees. A measurement
script, not a test: ``python bench/interface_names.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from netutils.interface import abbreviated_interface_name, canonical_interface_name

import discovery.names

REPO = Path(__file__).resolve().parent.parent
SEEN: set[str] = set()


def _recording(fn: Callable[[str], str]) -> Callable[[str], str]:
    def wrapped(name: str) -> str:
        SEEN.add(name)
        return fn(name)
    return wrapped


class Recorder:
    def pytest_configure(self, config: pytest.Config) -> None:
        import discovery.netdev.platforms
        import discovery.observations
        import discovery.snmp.transform
        for mod in (discovery.observations, discovery.netdev.platforms, discovery.snmp.transform):
            mod.long_interface_name = _recording(discovery.names.long_interface_name)  # type: ignore[attr-defined]


def main() -> int:
    tests = ["tests/unit/test_netdev_transform.py", "tests/unit/test_snmp_transform.py",
             "tests/contract/test_import_netbox_contract.py", "-m", "not neo4j", "-q", "-p", "no:cacheprovider"]
    pytest.main([str(REPO / t) if t.startswith("tests/") else t for t in tests], plugins=[Recorder()])
    names = sorted(SEEN)
    same = differ = 0
    rows = []
    for n in names:
        ours = discovery.names.long_interface_name(n)
        theirs = canonical_interface_name(n)
        if ours == theirs:
            same += 1
        else:
            differ += 1
            rows.append((n, ours, theirs, abbreviated_interface_name(ours), abbreviated_interface_name(theirs)))
    print(f"\n{len(names)} distinct interface names in the recorded data: {same} spelt alike, {differ} differ")
    print(f"{'recorded':28} {'ours (long_interface_name)':30} {'netutils canonical':30} abbreviated ours/theirs")
    for n, o, t, ao, at in rows:
        print(f"{n:28} {o:30} {t:30} {ao}/{at}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
