"""Pipelined batch writes into Neo4j: the client plans batch N+1 while the server writes batch N.

One batch at a time leaves the server idle while the client plans and builds rows, and the client
idle while the server writes and commits (at 50k CIs: about 13 s of client CPU, then 12 s of server
work, one after the other). Two threads of one Python process do not fix that: they share one GIL,
and the client's CPU time rose by a third when tried. So the writes run in a **writer process**
with its own driver connection, fed plain row lists (``WriteProgram``, cheap to pickle), while this
process plans the next batch in a read transaction, recording what the plan read.

A batch planned ahead is written as planned only when it is still true:

* the batch in flight wrote nothing the plan read (identity keys, CIs, relationships, or any
  sighting by scope, which lifecycle reads), checked here;
* nobody else wrote meanwhile: the store's write counter, checked by the writer under the store's
  lock (``Neo4jWriter.write_program``), is exactly what the accounted writes leave, and the event
  counter is what the program's events were numbered from.

Otherwise the batch is planned again inside its own write transaction here, as ``ingest`` does.
Either way each batch is one atomic transaction, batches are written in order, and a failing batch
stops the stream before any later batch is written.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import neo4j

import cmdb
from cmdb.errors import CmdbError, StoreError
from cmdb.store.base import BatchReader, ChangeSet, CIState, Conflict, RelState, Sighting, rel_id_for
from cmdb.store.neo4j.merges import Neo4jMerges
from cmdb.store.neo4j.reader import TxReader
from cmdb.store.neo4j.writer import Neo4jWriter, WriteProgram

Tag = TypeVar("Tag")
_SECRETISH = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|_KEY$", re.IGNORECASE)


@dataclass
class Touched:
    """Identity keys, CI ids and relationship ids a plan read, or a change set wrote."""

    keys: set[str] = field(default_factory=set)
    cis: set[str] = field(default_factory=set)
    rels: set[str] = field(default_factory=set)
    lifecycle: bool = False  # read sightings by scope: depends on everything its source saw

    @classmethod
    def written_by(cls, cs: ChangeSet) -> Touched:
        t = cls({k for k, _ in (*cs.keys, *cs.keys_retired)}, {c.id for c in (*cs.cis_new, *cs.cis_changed)},
                {r.id for r in (*cs.rels_new, *cs.rels_changed)})
        for w in cs.sightings:
            (t.cis if w.kind == "ci" else t.rels).add(w.item_id)
        t.lifecycle = bool(cs.merges)  # a merge re-points keys, deletes a CI: what was planned meanwhile is stale
        return t

    def meets(self, other: Touched) -> bool:
        return (self.lifecycle or other.lifecycle or not self.keys.isdisjoint(other.keys)
                or not self.cis.isdisjoint(other.cis) or not self.rels.isdisjoint(other.rels))


class RecordingReader(TxReader):
    """The transaction's reader, noting every key, CI and relationship a plan asked about."""

    def __init__(self, tx: neo4j.ManagedTransaction, rel_labels: list[str]) -> None:
        super().__init__(tx, rel_labels)
        self.read = Touched()

    def match_keys(self, keys: Iterable[str]) -> tuple[dict[str, str], dict[str, CIState]]:
        keys = list(keys)
        self.read.keys.update(keys)
        found, states = super().match_keys(keys)
        self.read.cis.update(found.values())
        return found, states

    def resolve_keys(self, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        keys = list(keys)
        self.read.keys.update(keys)
        found = super().resolve_keys(keys)
        self.read.cis.update(ci_id for ci_id, _ in found.values())
        return found

    def load_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        ids = list(ids)
        self.read.cis.update(ids)
        return super().load_cis(ids)

    def load_rels(self, triples: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], RelState]:
        triples = list(triples)
        self.read.rels.update(rel_id_for(*t) for t in triples)
        return super().load_rels(triples)

    def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]:
        ids = list(ids)
        self.read.rels.update(ids)
        return super().load_rels_by_id(ids)

    def rel_types_of(self, ids: list[str]) -> dict[str, str]:
        self.read.rels.update(ids)
        return super().rel_types_of(ids)

    def scopes(self, source: str) -> list[str]:
        self.read.lifecycle = True
        return super().scopes(source)

    def sightings_in(
        self, source: str, scopes: list[str]
    ) -> tuple[list[tuple[str, Sighting]], list[tuple[str, Sighting]]]:
        self.read.lifecycle = True
        return super().sightings_in(source, scopes)

    def open_conflicts(self, keys: Iterable[str]) -> list[Conflict]:
        self.read.lifecycle = True  # conflicts are not among what ``Touched`` tracks: replan after any write
        return super().open_conflicts(keys)

    # A merge's reads (rare) cover what any other batch may touch: the plan is made again if one was in flight.
    def rels_touching(self, ci_ids: Iterable[str]) -> list[RelState]:
        self.read.lifecycle = True
        return super().rels_touching(ci_ids)

    def kept_separate(self, ci_ids: Iterable[str]) -> list[list[str]]:
        self.read.lifecycle = True
        return super().kept_separate(ci_ids)


class _PipelineWriter(Neo4jMerges, Neo4jWriter):
    """The writer process's store part: batch writes, with the merges a batch may carry."""


def _writer_main(conn: multiprocessing.connection.Connection) -> None:
    """The writer process: write each program it is sent, answer with the counters or the error."""
    uri, user, password, database, class_labels = conn.recv()
    try:
        store = _PipelineWriter(uri, user, password, database)
        store._class_labels = class_labels  # the parent's schema may extend the default one
    except CmdbError as exc:
        conn.send(("error", exc))
        return
    conn.send(("ready", None))
    try:
        while True:
            msg = conn.recv()
            if msg is None:
                return
            prog, writes = msg
            try:
                conn.send(("ok", store.write_program(prog, writes)))
            except CmdbError as exc:
                conn.send(("error", exc))
            except Exception as exc:  # anything else still reaches the parent as our error
                conn.send(("error", StoreError(f"the Neo4j writer failed: {type(exc).__name__}: {exc}")))
    except (EOFError, KeyboardInterrupt):
        return
    finally:
        store.close()


@dataclass
class _Flight(Generic[Tag]):
    tag: Tag
    plan: Callable[[BatchReader], ChangeSet]
    cs: ChangeSet
    prog: WriteProgram


@dataclass
class _Written:
    writes: int  # the store's write counter as the last batch left it
    seq: int  # its event counter
    cs: ChangeSet


class Neo4jPipeline(Generic[Tag]):
    """``push`` plans (a batch each) in order; each call yields the tags of batches now written."""

    def __init__(self, store: Neo4jWriter) -> None:
        self.store = store
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._flight: _Flight[Tag] | None = None
        self._last: _Written | None = None
        self._ready = False  # the writer has connected to the server
        self.ahead = 0  # batches written as planned ahead
        self.replanned = 0  # batches planned again in their own transaction

    def __enter__(self) -> Neo4jPipeline[Tag]:
        self._start()  # the writer connects while the first batch is planned
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        if self._conn is not None:
            return
        store = self.store
        # A fresh interpreter (not multiprocessing's spawn, which re-runs the caller's __main__),
        # talking over a socket pair; the password goes through the socket, not argv or environ.
        ours, theirs = socket.socketpair()
        root = str(Path(cmdb.__file__).resolve().parent.parent)
        env = {k: v for k, v in os.environ.items() if not _SECRETISH.search(k)}  # it needs none of them
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        with theirs:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cmdb.store.neo4j.pipeline", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env)
        self._conn = multiprocessing.connection.Connection(ours.detach())
        self._ready = False
        self._conn.send((store._uri, store.user, store._password, store.database, store._class_labels))

    def _writer(self) -> multiprocessing.connection.Connection:
        self._start()
        if not self._ready:
            self._receive("starting the writer process")
            self._ready = True
        assert self._conn is not None
        return self._conn

    def _receive(self, doing: str) -> Any:
        assert self._conn is not None
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            code = self._proc.poll() if self._proc is not None else None
            self._conn.close()
            self._conn = None
            raise StoreError(f"the Neo4j writer process for {self.store.url} exited (code {code}) while {doing};"
                             " the batch in flight may or may not have been written. Re-run the load: ingest is"
                             " idempotent") from None
        if kind == "error":
            raise value
        return value

    def push(self, plan: Callable[[BatchReader], ChangeSet], tag: Tag) -> Iterator[Tag]:
        """Plan this batch (against the store as the batch in flight leaves it, if it can) and
        write it; yields the tags of batches as their writes complete, in order (the one in flight
        before an error of this one)."""
        flight = self._flight
        seq = None if flight is None else flight.prog.seq + flight.prog.events
        try:
            cs, prog, counter, reader = self.store.plan_ahead(plan, seq, RecordingReader)
            read = reader.read if isinstance(reader, RecordingReader) else Touched(lifecycle=True)
        except CmdbError:
            # e.g. a reference to a CI that the batch in flight creates: planned again in its turn
            cs, prog, counter, read = None, None, 0, Touched(lifecycle=True)
        yield from self._land()
        last = self._last
        expect: int | None = None
        if cs is not None and prog is not None:
            if last is None:
                expect = counter + 1
            elif (counter == last.writes - 1 or counter >= last.writes) and prog.seq == last.seq \
                    and not read.meets(Touched.written_by(last.cs)):
                expect = max(counter, last.writes) + 1
        if cs is None or prog is None or expect is None:
            self._write_here(plan)
            self.replanned += 1
            yield tag
            return
        self._writer().send((prog, expect))
        self._flight = _Flight(tag, plan, cs, prog)

    def drain(self) -> Iterator[Tag]:
        """Wait for the batch in flight; yields its tag once written."""
        return self._land()

    def _land(self) -> Iterator[Tag]:
        flight, self._flight = self._flight, None
        if flight is None:
            return
        counters = self._receive("writing a batch")
        if counters is None:  # the store moved on since the plan: planned again, here
            self._write_here(flight.plan)
            self.replanned += 1
        else:
            self._last = _Written(counters[0], counters[1], flight.cs)
            self.ahead += 1
        yield flight.tag

    def _write_here(self, plan: Callable[[BatchReader], ChangeSet]) -> None:
        cs, writes, seq = self.store.write_counted(plan)
        self._last = _Written(writes, seq, cs)

    def close(self) -> None:
        """Stop the writer process (a batch in flight is waited for by ``drain``, not here)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        if self._proc is not None:
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None


if __name__ == "__main__":
    _writer_main(multiprocessing.connection.Connection(int(sys.argv[1])))
