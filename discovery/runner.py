"""The discovery run: many targets, one collector, bounded concurrency, one record of what happened.

Each target is read on its own (``Collector.read``, then ``transform`` and ``observations.to_batch``);
its batch is ingested at once as its own transaction with the run id ``<run>/<n>``, so one bad target
costs only itself and the graph fills while the run goes on. Outcomes (ok, timeout, refused, auth
failed, unreachable, parse error ...) are decided here from the exception a read raised, through the
collector's table (``discovery.collector.outcome_of``), and kept per target in a
``DiscoveryRunRecord``, saved when the run starts and when it ends. With ``record_dir`` every raw
reading is written there too (``--record DIR``), for golden tests.
After the last target the collector may add run-level batches (``finish``): SSH discovery maps
application dependencies across hosts there.
"""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cmdb.batch import Batch
from cmdb.errors import CmdbError
from cmdb.identity import identity_keys
from cmdb.ingest import ingest
from cmdb.model import Schema
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema
from cmdb.store.base import DiscoveryRunRecord, GraphStore, iso
from discovery.collector import Collector, PartialReading, outcome_of, record_raw
from discovery.observations import to_batch
from discovery.outcomes import Outcome, TargetResult

log = logging.getLogger("cmdb.discovery")

__all__ = ["Collector", "collect_target", "run_discovery"]


def new_run_id(method: str) -> str:
    return f"{method}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def remembered_profiles(store: GraphStore, targets: Sequence[str], attr: str, schema: Schema) -> dict[str, str]:
    """target -> name of the profile that last worked on the device with that address (or FQDN).

    One identity-key look-up per target (``management_ip`` or ``fqdn``), then one bulk read."""
    found: dict[str, str] = {}
    for target in targets:
        try:
            attrs: dict[str, Any] = {"management_ip": str(ipaddress.ip_address(target))}
        except ValueError:
            attrs = {"fqdn": target}
        for key in identity_keys(schema, "Host", attrs):
            ci_id = store.find_by_key(key)
            if ci_id is not None:
                found[target] = ci_id
                break
    cis = store.get_cis(set(found.values()))
    out: dict[str, str] = {}
    for target, ci_id in found.items():
        value = cis[ci_id].attrs.get(attr) if ci_id in cis else None
        if value:
            out[target] = str(value)
    return out


class _Progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool, method: str, total: int) -> None:
        self.bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        self.bar = Progress(TextColumn(f"{method}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=console, transient=True)
        self.task = self.bar.add_task("", total=total)
        self.bar.start()

    def advance(self, text: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


async def run_discovery(
    collector: Collector,
    targets: Sequence[str],
    store: GraphStore,
    *,
    concurrency: int = 32,
    target_timeout: float | None = None,
    actor: str | None = None,
    options: dict[str, Any] | None = None,
    show_progress: bool = False,
    schema: Schema | None = None,
    config: ReconcileConfig | None = None,
    run_id: str | None = None,
    on_result: Callable[[TargetResult], None] | None = None,
    record_dir: Path | None = None,
    sink: Callable[[Batch], dict[str, Any]] | None = None,
) -> DiscoveryRunRecord:
    """Collect every target, ingest each target's batch, and return the saved run record.

    With ``sink`` (a remote collector's ``BatchPusher.push``) each batch goes there instead of ``ingest``
    into ``store``, which then keeps only the run record."""
    if concurrency < 1:
        raise CmdbError(f"concurrency must be at least 1, not {concurrency}")
    schema = schema or store_schema(store)
    record = DiscoveryRunRecord(
        run_id=run_id or new_run_id(collector.method), method=collector.method, started_at=iso(datetime.now(UTC)),
        actor=actor or _whoami(), targets=list(targets), options=dict(options or {}),
    )
    store.save_discovery_run(record)
    remembered = (remembered_profiles(store, targets, collector.profile_attr, schema)
                  if collector.profile_attr else {})
    sem = asyncio.Semaphore(concurrency)
    results: list[TargetResult] = []
    progress = _Progress(show_progress, collector.method, len(targets))
    batch_no = 0

    async def one(target: str) -> tuple[TargetResult, float]:
        async with sem:
            started = time.monotonic()
            result = await collect_target(collector, target, remembered.get(target), target_timeout=target_timeout,
                                          record_dir=record_dir)
            return result, time.monotonic() - started

    def write(batch: Batch, where: str) -> tuple[Outcome, str, int, int]:
        nonlocal batch_no
        batch_no += 1
        batch.run_id = f"{record.run_id}/{batch_no:04d}"
        batch.actor = record.actor
        batch.origin = f"{collector.method} {where}"
        try:
            if sink is not None:
                events = int(sink(batch).get("events", 0))
            else:
                events = ingest(store, batch, schema=schema, config=config).events
        except CmdbError as exc:
            return Outcome.REJECTED, str(exc), 0, 0
        return Outcome.OK, "", len(batch.cis) + len(batch.rels), events

    # Writes run on one worker thread, one at a time, so a slow store never stalls the event loop
    # (and with it the timeouts of the targets still being collected).
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmdb-ingest")
    loop = asyncio.get_running_loop()
    try:
        for fut in asyncio.as_completed([one(t) for t in targets]):
            result, seconds = await fut
            items = changes = 0
            # A failed target may still hand over a partial batch (complete: false): what it saw is refreshed.
            if result.batch is not None and (result.outcome == Outcome.OK or not result.batch.complete):
                outcome, detail, items, changes = await loop.run_in_executor(writer, write, result.batch,
                                                                             result.target)
                if outcome != Outcome.OK:
                    result.outcome, result.detail = outcome, detail
            results.append(result)
            record.outcomes.append({"target": result.target, "outcome": str(result.outcome), "detail": result.detail,
                                    "profile": result.profile, "items": items, "changes": changes,
                                    "seconds": round(seconds, 3)})
            log.info("%s %s: %s%s", collector.method, result.target, result.outcome,
                     f" ({result.detail})" if result.detail else "")
            if on_result is not None:
                on_result(result)
            progress.advance(f"{result.target}: {result.outcome}")
        for extra in collector.finish(results, record.run_id):
            outcome, detail, items, changes = await loop.run_in_executor(writer, write, extra, "run-level")
            record.options.setdefault("run_level_batches", []).append(
                {"scope": extra.scope, "outcome": str(outcome), "detail": detail, "items": items, "changes": changes})
    finally:
        writer.shutdown(wait=True)
        progress.close()
        order = {t: i for i, t in enumerate(targets)}
        record.outcomes.sort(key=lambda o: order.get(o["target"], len(order)))
        record.ended_at = iso(datetime.now(UTC))
        store.save_discovery_run(record)
    return record


async def collect_target(collector: Collector, target: str, remembered_profile: str | None = None, *,
                         target_timeout: float | None = None, record_dir: Path | None = None) -> TargetResult:
    """One target: ``read`` (bounded by ``target_timeout``), record, ``transform``, ``to_batch``; any
    exception becomes the outcome the collector's table gives it (``discovery.collector.outcome_of``).
    A ``PartialReading`` is transformed all the same: its batch (``complete: false``) goes with the
    outcome of its cause, and ``run_discovery`` ingests it."""
    try:
        coro = collector.read(target, remembered_profile)
        failure: BaseException | None = None
        try:
            raw = await (asyncio.wait_for(coro, target_timeout) if target_timeout else coro)
        except PartialReading as partial:
            raw, failure = partial.raw, partial.cause
        if record_dir is not None:
            record_raw(record_dir, collector.method, target, raw)
        seen = collector.transform(raw)
        batch = None if seen.facts is None else to_batch(collector.source, seen.scope, seen.complete, seen.facts)
        outcome = Outcome.OK if failure is None else outcome_of(failure, collector.outcomes)
        detail = seen.detail or ("" if failure is None else f"partial: {failure}")
        return TargetResult(target, outcome, detail, seen.profile, batch, seen.keep)
    except Exception as exc:
        outcome = outcome_of(exc, collector.outcomes)
        if isinstance(exc, TimeoutError) and not str(exc) and target_timeout:
            detail = f"no answer within {target_timeout:g} s"
        elif isinstance(exc, CmdbError):
            detail = str(exc)
        else:
            log.debug("%s %s: %s", collector.method, target, type(exc).__name__, exc_info=True)
            detail = f"{type(exc).__name__}: {exc}"
        return TargetResult(target, outcome, detail, getattr(exc, "profile", None))


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
