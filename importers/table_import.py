"""A mapped tabular file into the CMDB through ``ingest``: validate all, then write in batches.

Streaming and atomicity pull against each other: one transaction for a whole file would hold every
row's CIs, relationships, provenance and events in memory at once. So an import reads the file
twice. The first pass maps and validates every row against the mapping and the schema, exactly as
far as ``ingest`` would refuse it (types, enums, identity, required attributes; relationship types
and class constraints are checked when the mapping loads): one bad row and nothing is written, with
every bad row reported as ``file:line: column: reason``. The second pass maps the rows again and
hands them to ``ingest_many`` in batches of ``batch_size`` rows, each one transaction. What can
still fail in the second pass is the store itself (disk full, server gone); the rows before that
batch are written, and since importing is idempotent, running the same import again finishes it
without a single extra history event. ``bench/import.py`` measures the one-transaction alternative.

Each row is one CI (ref ``row<line>``); a relationship column adds its target (a Person by email, a
Team by name ...) to the row's batch as an item, so it is found if it exists and created if not.
Batches are partial views (``complete: false``): a row missing from a file ages nothing.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cmdb.batch import Batch, CIRecord, RelRecord
from cmdb.errors import BadInputError
from cmdb.ingest_pipeline import ingest_many
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore
from importers.dryrun import BatchPlan, plan_batch
from importers.mapping import MappedRow, Mapping_, RowError
from importers.tabular import file_format, read_rows

MAX_REPORTED = 500
Progress = Callable[[str, int], None]  # (phase, rows done so far)


class RowsRejectedError(BadInputError):
    """Bad rows in an atomic import: nothing was written."""

    def __init__(self, message: str, problems: list[str], count: int) -> None:
        super().__init__(message)
        self.problems = problems
        self.count = count


@dataclass
class ImportReport:
    file: str
    source: str
    rows: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    plans: list[tuple[list[int], BatchPlan]] = field(default_factory=list)  # dry run: (row lines, plan)

    def add(self, summary: dict[str, int]) -> None:
        for k, v in summary.items():
            self.totals[k] = self.totals.get(k, 0) + v


class _Rejects:
    """The reject file: the bad rows as they were, with line and reason (CSV for CSV, else JSON Lines)."""

    def __init__(self, path: Path, as_csv: bool) -> None:
        self.path = path
        self.as_csv = as_csv
        try:
            self.fh: IO[str] = path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise BadInputError(f"cannot write the reject file {path}: {exc.strerror}") from None
        self.writer: Any = None

    def add(self, line: int, row: dict[str, Any], reason: str) -> None:
        record = {"line": line, "reason": reason, **{k: v for k, v in row.items() if k != "__error__"}}
        if not self.as_csv:
            self.fh.write(json.dumps(record, default=str) + "\n")
            return
        if self.writer is None:
            self.writer = csv.DictWriter(self.fh, fieldnames=list(record), extrasaction="ignore", restval="")
            self.writer.writeheader()
        self.writer.writerow(record)

    def close(self) -> None:
        self.fh.close()


class TableImport:
    """One file, one mapping, one store: ``run`` validates, then writes (or, with ``dry_run``, plans)."""

    def __init__(self, store: GraphStore, path: Path, mapping: Mapping_, *, config: ReconcileConfig | None = None,
                 progress: Progress | None = None) -> None:
        self.store = store
        self.path = path
        self.mapping = mapping
        self.config = config or ReconcileConfig()
        self.progress = progress
        self.kind = file_format(path)
        self.run_id = "import-" + uuid.uuid4().hex[:12]

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        opts = self.mapping.spec.csv
        check = self.mapping.check_header if self.kind == "csv" else None
        return read_rows(self.path, delimiter=opts.delimiter, quotechar=opts.quotechar, encoding=opts.encoding,
                         header=check)

    def _map(self, row: dict[str, Any]) -> MappedRow:
        if "__error__" in row:
            raise RowError("(row)", row["__error__"])
        if self.kind != "csv":
            unknown = sorted(k for k in row if k not in self.mapping.known_columns)
            if unknown:
                raise RowError(unknown[0], "not in the mapping; map it or list it under ignore")
        return self.mapping.map_row(row)

    # -- pass 1 ----------------------------------------------------------------------------------
    def validate(self, report: ImportReport, rejects: Path | None) -> set[int]:
        """Every row mapped and checked; the lines of the bad ones (written to ``rejects`` if given)."""
        bad: set[int] = set()
        sink = _Rejects(rejects, self.kind == "csv") if rejects else None
        try:
            for n, (line, row) in enumerate(self._rows(), start=1):
                try:
                    self._map(row)
                except RowError as exc:
                    bad.add(line)
                    if len(report.problems) < MAX_REPORTED:
                        report.problems.append(f"{self.path}:{line}: {exc.column}: {exc.reason}")
                    if sink is not None:
                        sink.add(line, row, f"{exc.column}: {exc.reason}")
                report.rows = n
                if self.progress is not None and n % 1000 == 0:
                    self.progress("validating", n)
        finally:
            if sink is not None:
                sink.close()
        report.rejected = len(bad)
        return bad

    # -- pass 2 ----------------------------------------------------------------------------------
    def batches(self, skip: set[int]) -> Iterator[tuple[list[int], Batch]]:
        """(line of each CI record, batch) for every ``batch_size`` good rows, in file order."""
        size = self.mapping.spec.batch_size
        chunk: list[tuple[int, MappedRow]] = []
        number = 0
        for line, row in self._rows():
            if line in skip:
                continue
            chunk.append((line, self._map(row)))
            if len(chunk) >= size:
                number += 1
                yield self._batch(chunk, number)
                chunk = []
        if chunk:
            yield self._batch(chunk, number + 1)

    def _batch(self, chunk: list[tuple[int, MappedRow]], number: int) -> tuple[list[int], Batch]:
        batch = Batch(source=self.mapping.source, scope=self.path.name, complete=False, origin=str(self.path),
                      run_id=f"{self.run_id}/{number}")
        cis, rels = batch.cis, batch.rels
        targets: dict[tuple[str, str, Any], str] = {}
        lines: list[int] = []  # the file line of each CI record (a target: the first row naming it)
        for line, m in chunk:
            ref = f"row{line}"
            lines.append(line)
            cis.append(CIRecord(m.cls, m.attrs, ref, len(cis)))
            for r, value in m.rels:
                tkey = (r.target_cls, r.target_attr, value)
                tref = targets.get(tkey)
                if tref is None:
                    tref = targets[tkey] = f"{r.target_cls}:{r.target_attr}={value}"
                    cis.append(CIRecord(r.target_cls, {r.target_attr: value}, tref, len(cis)))
                    lines.append(line)
                src, dst = (ref, tref) if r.direction == "out" else (tref, ref)
                rels.append(RelRecord(r.type, src, dst, {}, len(rels)))
        return lines, batch

    def run(self, *, dry_run: bool = False, rejects: Path | None = None) -> ImportReport:
        report = ImportReport(str(self.path), self.mapping.source)
        bad = self.validate(report, rejects)
        if bad and rejects is None:
            shown = "\n".join(report.problems)
            more = len(bad) - len(report.problems)
            raise RowsRejectedError(
                f"{len(bad)} bad row(s) in {self.path}; nothing was written (fix them, or write the good rows "
                f"with --skip-invalid REJECTS):\n{shown}" + (f"\n... and {more} more" if more > 0 else ""),
                report.problems, len(bad))
        done = 0
        schema = self.mapping.schema
        if dry_run:
            for lines, batch in self.batches(bad):
                plan = plan_batch(self.store, batch, schema=schema, config=self.config)
                report.plans.append((lines, plan))
                done += len(set(lines))
                if self.progress is not None:
                    self.progress("planning", done)
            return report
        sizes: list[int] = []

        def stream() -> Iterator[Batch]:
            for lines, batch in self.batches(bad):
                sizes.append(len(set(lines)))
                yield batch

        for result in ingest_many(self.store, stream(), schema=schema, config=self.config):
            report.add(result.summary())
            report.run_ids.append(result.run_id)
            done += sizes[len(report.run_ids) - 1]
            if self.progress is not None:
                self.progress("importing", done)
        return report
