"""``--record DIR``: the runner writes each target's raw reading where a golden test can feed it back to
``transform``; the outcome of a failed read comes from the collector's table, not from the collector."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmdb.batch import Batch
from discovery.collector import Observed, OutcomeTable, outcome_of
from discovery.outcomes import Outcome, TargetError
from discovery.runner import collect_target
from discovery.scan.transform import SCAN_OUTCOMES, SOURCE, PortsFiltered, observe, transform_scan

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "scan"


class Unplugged(Exception):
    """A library's own error, which only the table below gives a meaning."""


class ReplayedScan:
    """The scan method's transform and table over recorded probe results instead of the network."""

    method = "scan"
    source = SOURCE
    profile_attr: str | None = None
    outcomes: OutcomeTable = (*SCAN_OUTCOMES, (Unplugged, Outcome.UNREACHABLE))

    def __init__(self, raws: dict[str, dict[str, Any]]) -> None:
        self.raws = raws

    async def read(self, target: str, remembered_profile: str | None) -> dict[str, Any]:
        if target not in self.raws:
            raise Unplugged(f"{target}: cable unplugged")
        return self.raws[target]

    def transform(self, raw: dict[str, Any]) -> Observed:
        return observe(raw)

    def finish(self, results: Any, run_id: str) -> list[Batch]:
        return []


def shape(batch: Batch | None) -> Any:
    assert batch is not None
    return (sorted((c.cls, c.ref or "", json.dumps(c.attrs, sort_keys=True)) for c in batch.cis),
            sorted((r.type, str(r.src), str(r.dst), json.dumps(r.attrs, sort_keys=True)) for r in batch.rels))


def test_a_recorded_reading_is_a_golden_file(tmp_path: Path) -> None:
    raw = json.loads((GOLDEN / "ssh_tls_closed.json").read_text())
    collector = ReplayedScan({"127.0.0.241": raw})
    result = asyncio.run(collect_target(collector, "127.0.0.241", record_dir=tmp_path))
    recorded = tmp_path / "scan" / "127.0.0.241.json"
    assert result.outcome == Outcome.OK and json.loads(recorded.read_text()) == raw
    assert shape(transform_scan(json.loads(recorded.read_text())).batch) == shape(result.batch)


def test_outcomes_come_from_the_table(tmp_path: Path) -> None:
    assert outcome_of(Unplugged(), ReplayedScan.outcomes) == Outcome.UNREACHABLE
    assert outcome_of(PortsFiltered("x"), ReplayedScan.outcomes) == Outcome.TIMEOUT
    assert outcome_of(TargetError(Outcome.AUTH_FAILED, "x"), ()) == Outcome.AUTH_FAILED
    assert outcome_of(ConnectionRefusedError(), ()) == Outcome.REFUSED and outcome_of(KeyError(), ()) == Outcome.ERROR
    filtered = json.loads((GOLDEN / "all_filtered.json").read_text())
    result = asyncio.run(collect_target(ReplayedScan({}), "10.0.0.9", record_dir=tmp_path))
    assert (result.outcome, result.batch, result.detail) == (Outcome.UNREACHABLE, None, "Unplugged: 10.0.0.9: cable "
                                                                                        "unplugged")
    assert not (tmp_path / "scan").exists()  # nothing read, nothing recorded
    assert transform_scan(filtered).outcome == Outcome.TIMEOUT


@dataclass
class Reading:
    name: str
    payload: bytes


def test_dataclasses_and_bytes_are_recorded_as_json(tmp_path: Path) -> None:
    from discovery.collector import record_raw

    out = record_raw(tmp_path, "snmp", "sw1:161/x", Reading("sys", b"\x00\xff"))
    assert out == tmp_path / "snmp" / "sw1_161_x.json"
    assert json.loads(out.read_text()) == {"_type": "Reading", "name": "sys", "payload": {"_bytes": "00ff"}}
