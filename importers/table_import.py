"""A mapped tabular file into the CMDB through ``ingest``: validate all, then write in batches.

Streaming and atomicity pull against each other: one transaction for a whole file would hold every
row's CIs, relationships, provenance and events in memory at once. So an import reads the file
twice. The first pass maps and validates every row against the mapping and the schema, exactly as
far as ``ingest`` would refuse it (types, enums, identity, required attributes; relationship types
and class constraints are checked when the mapping loads): one bad row and nothing is written, with
every bad row reported as ``file:line: column: reason``. The first pass also spills the mapped rows
to a temporary file (``marshal`` records); the second pass reads them back (no second parse and
mapping) and hands them to ``ingest_many`` in batches of ``batch_size`` rows, each one transaction.
What can still fail in the second pass is the store itself (disk full, server gone); the rows before that
batch are written, and since importing is idempotent, running the same import again finishes it
without a single extra history event. ``bench/import.py`` measures the one-transaction alternative.

Each row is one CI (ref ``row<line>``); a relationship column adds its target (a Person by email, a
Team by name ...) to the row's batch as an item, so it is found if it exists and created if not.
Batches are partial views (``complete: false``): a row missing from a file ages nothing.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import marshal
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cmdb.batch import Batch, CIRecord, RelRecord
from cmdb.dryrun import BatchPlan, plan_batch
from cmdb.errors import BadInputError
from cmdb.ingest_pipeline import ingest_many
from cmdb.model import Schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore
from importers.mapping import MappedRow, Mapping_, RowError
from importers.tabular import file_format, read_rows

MAX_REPORTED = 500
PLANNED_COUNTS = (("create", "created"), ("update", "updated"), ("unchanged", "unchanged"), ("conflict", "conflicts"),
                  ("rels_created", "rels_created"), ("merged", "merged"), ("keys_retired", "keys_retired"),
                  ("attrs_dropped", "attrs_dropped"))  # ImportReport.planned key, summary key
DRY_RUN_DETAIL = 20_000  # items a dry run explains one by one; the rest are counted
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
    notes: list[str] = field(default_factory=list)
    plans: list[tuple[list[str], BatchPlan]] = field(default_factory=list)  # dry run: (label per CI record, plan)
    planned: dict[str, int] = field(default_factory=dict)  # dry run: the planner's counts (PLANNED_COUNTS)
    omitted: int = 0  # dry-run items counted but not kept (a large file keeps memory flat)

    def add_plan(self, labels: list[str], plan: BatchPlan) -> None:
        # The planner's own counts, so a dry run says what the import would (a merge is an update).
        for action, key in PLANNED_COUNTS:
            self.planned[action] = self.planned.get(action, 0) + plan.summary.get(key, 0)
        kept = sum(len(p.items) for _, p in self.plans)
        if kept >= DRY_RUN_DETAIL:
            self.omitted += len(plan.items)
            return
        self.plans.append((labels, plan))

    def add(self, summary: dict[str, int]) -> None:
        for k, v in summary.items():
            self.totals[k] = self.totals.get(k, 0) + v


def _spill_write(spill: IO[bytes], records: list[Any]) -> None:
    """One length-prefixed marshal record (``marshal.load`` from a file reads it piecemeal: 5x slower)."""
    data = marshal.dumps(records)
    spill.write(len(data).to_bytes(8, "little"))
    spill.write(data)


@contextlib.contextmanager
def collector_paused(every: int = 20) -> Iterator[Callable[[], None]]:
    """The cyclic garbage collector off for a streamed import, with a full collection every ``every``
    batches (call the yielded function once per batch).

    Why: a loaded file is parsed before ``ingest_many`` freezes it, but a streamed file makes its
    batches one by one, and the collector then re-traces every batch's objects on its way to the old
    generation: 30% more CPU than ``cmdb load`` of the same rows (bench/import.py, 50k rows: 8.4 s
    against 6.5 s; 6.1 s with the collector paused). Objects alive when the import starts are frozen,
    so the periodic full collection only looks at what the import made since."""
    if not gc.isenabled():
        yield lambda: None
        return
    froze = not gc.get_freeze_count()
    if froze:
        gc.freeze()
    gc.disable()
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count % every == 0:
            gc.collect()

    try:
        yield tick
    finally:
        gc.enable()
        if froze:
            gc.unfreeze()


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
                 progress: Progress | None = None, admit: Callable[[Batch], None] | None = None,
                 actor: str | None = None) -> None:
        """``admit`` sees every batch before it is planned or written and raises to refuse the import
        (the API's partition check); it runs over all batches first, so a refusal writes nothing."""
        self.store = store
        self.admit = admit
        self.actor = actor  # who the history names (the API's token); None: ingest's default
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
    def validate(self, report: ImportReport, rejects: Path | None, spill: IO[bytes] | None = None) -> set[int]:
        """Every row mapped and checked; the lines of the bad ones (written to ``rejects`` if given).

        The good rows, mapped, go to ``spill`` (marshal records, on disk): the second pass reads them
        back instead of parsing and mapping the file again."""
        bad: set[int] = set()
        sink = _Rejects(rejects, self.kind == "csv") if rejects else None
        rel_index = {id(r): i for i, r in enumerate(self.mapping.relations)}
        size = self.mapping.spec.batch_size
        pending: list[tuple[int, str, dict[str, Any], list[tuple[int, Any]]]] = []
        try:
            for n, (line, row) in enumerate(self._rows(), start=1):
                try:
                    m = self._map(row)
                    if spill is not None:
                        pending.append((line, m.cls, m.attrs, [(rel_index[id(r)], v) for r, v in m.rels]))
                        if len(pending) >= size:  # one marshal record per batch: one read per batch later
                            _spill_write(spill, pending)
                            pending = []
                except RowError as exc:
                    bad.add(line)
                    if len(report.problems) < MAX_REPORTED:
                        report.problems.append(f"{self.path}:{line}: {exc.column}: {exc.reason}")
                    if sink is not None:
                        sink.add(line, row, f"{exc.column}: {exc.reason}")
                report.rows = n
                if self.progress is not None and n % 1000 == 0:
                    self.progress("validating", n)
            if spill is not None and pending:
                _spill_write(spill, pending)
        finally:
            if sink is not None:
                sink.close()
        report.rejected = len(bad)
        return bad

    # -- pass 2 ----------------------------------------------------------------------------------
    def _spilled(self, spill: IO[bytes]) -> Iterator[tuple[int, MappedRow]]:
        spill.seek(0)
        relations = self.mapping.relations
        while True:
            head = spill.read(8)
            if not head:
                return
            records = marshal.loads(spill.read(int.from_bytes(head, "little")))
            for line, cls, attrs, rels in records:
                yield line, MappedRow(cls, attrs, [(relations[i], v) for i, v in rels])

    def batches(self, spill: IO[bytes]) -> Iterator[tuple[list[int], Batch]]:
        """(line of each CI record, batch) for every ``batch_size`` good rows, in file order."""
        size = self.mapping.spec.batch_size
        chunk: list[tuple[int, MappedRow]] = []
        number = 0
        for line, mapped in self._spilled(spill):
            chunk.append((line, mapped))
            if len(chunk) >= size:
                number += 1
                yield self._batch(chunk, number)
                chunk = []
        if chunk:
            yield self._batch(chunk, number + 1)

    def _batch(self, chunk: list[tuple[int, MappedRow]], number: int) -> tuple[list[int], Batch]:
        batch = Batch(source=self.mapping.source, scope=self.path.name, complete=False, origin=str(self.path),
                      run_id=f"{self.run_id}/{number}", actor=self.actor)
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
        with tempfile.TemporaryFile(prefix="cmdb-import-") as spill, collector_paused() as tick:
            return self._run(spill, dry_run, rejects, tick)

    def _run(self, spill: IO[bytes], dry_run: bool, rejects: Path | None, tick: Callable[[], None]
             ) -> ImportReport:
        report = ImportReport(str(self.path), self.mapping.source)
        bad = self.validate(report, rejects, spill)
        if bad and rejects is None:
            shown = "\n".join(report.problems)
            more = len(bad) - len(report.problems)
            raise RowsRejectedError(
                f"{len(bad)} bad row(s) in {self.path}; nothing was written (fix them, or write the good rows "
                f"with --skip-invalid REJECTS):\n{shown}" + (f"\n... and {more} more" if more > 0 else ""),
                report.problems, len(bad))
        done = 0
        schema = self.mapping.schema
        admit = self.admit
        if admit is not None:
            for _, batch in self.batches(spill):
                admit(batch)
        if dry_run:
            for lines, batch in self.batches(spill):
                if admit is not None:
                    admit(batch)
                plan = plan_batch(self.store, batch, schema=schema, config=self.config)
                report.add_plan([f"line {n}" for n in lines], plan)
                done += len(set(lines))
                if self.progress is not None:
                    self.progress("planning", done)
            return report
        sizes: list[int] = []

        def stream() -> Iterator[Batch]:
            for lines, batch in self.batches(spill):
                sizes.append(len(set(lines)))
                tick()
                if admit is not None:
                    admit(batch)  # again: it fills in the partitions of this batch's items
                yield batch

        for result in ingest_many(self.store, stream(), schema=schema, config=self.config):
            report.add(result.summary())
            report.run_ids.append(result.run_id)
            done += sizes[len(report.run_ids) - 1]
            if self.progress is not None:
                self.progress("importing", done)
        return report


def import_batches(store: GraphStore, batches: Iterable[tuple[list[str], Batch]], report: ImportReport, *,
                   schema: Schema, config: ReconcileConfig, dry_run: bool = False,
                   progress: Progress | None = None) -> ImportReport:
    """The importers that build native batches (nmap, ServiceNow, NetBox): write them in order, each
    atomic, or with ``dry_run`` plan each against the store and keep the plans. ``batches`` pairs
    each batch with a label per CI record for the dry-run report."""
    if dry_run:
        for labels, batch in batches:
            try:
                report.add_plan(labels, plan_batch(store, batch, schema=schema, config=config))
            except BadInputError:
                if batch.cis:
                    raise
                # Relationships between CIs that earlier batches of this import create: they exist only
                # once those are written, so a dry run cannot plan them.
                report.notes.append(f"{batch.origin}: {len(batch.rels)} relationships between CIs this import "
                                    "creates are planned only when it runs")
        return report
    for result in ingest_many(store, (b for _, b in batches), schema=schema, config=config):
        report.add(result.summary())
        report.run_ids.append(result.run_id)
        if progress is not None:
            progress("importing", len(report.run_ids))
    return report
