"""The pipelined Neo4j writer (``cmdb.store.neo4j.pipeline``) against a real server: a batch planned
ahead is written as planned only while that is still true, errors of the writer process reach the
caller, and the password never shows in the writer's command line or environment."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.errors import StoreError
from cmdb.ingest import ingest
from cmdb.ingest_pipeline import ingest_many
from cmdb.model import default_schema
from cmdb.planning import Planner
from cmdb.reconcile import ReconcileConfig
from cmdb.store.neo4j import Neo4jStore
from cmdb.store.neo4j.pipeline import Neo4jPipeline, RecordingReader

pipelined = functools.partial(ingest_many, pipeline=True)  # pipelined even for small batches


pytestmark = pytest.mark.neo4j


def server(fqdn: str, **attrs: Any) -> dict[str, Any]:
    return {"class": "Server", "fqdn": fqdn, **attrs}


def planner(doc: dict[str, Any]) -> Planner:
    p = Planner(default_schema(), ReconcileConfig(), Batch.from_dict(doc), datetime.now(UTC))
    p.prepare()
    return p


def os_of(store: Neo4jStore, fqdn: str) -> Any:
    ci = store.get_ci(store.find_by_key(f"device:fqdn={fqdn}") or "")
    assert ci is not None
    return ci.attrs.get("os")


def test_a_plan_still_true_is_written_as_planned(neo: Neo4jStore) -> None:
    ingest(neo, Batch.from_dict({"source": "import", "cis": [server("a.example.com", os="Linux")]}))
    update = planner({"source": "ssh", "cis": [server("a.example.com", os="Ubuntu")]})
    cs, prog, counter, reader = neo.plan_ahead(update.plan, None, RecordingReader)
    assert [c.attrs["os"] for c in cs.cis_changed] == ["Ubuntu"]
    assert isinstance(reader, RecordingReader) and reader.read.keys  # it noted the keys it looked up
    assert neo.write_program(prog, counter + 1) == (counter + 1, prog.seq + 1)
    assert os_of(neo, "a.example.com") == "Ubuntu"
    assert len(neo.events()) == 2  # created, then the os change


def test_a_write_by_anyone_else_in_between_makes_the_plan_stale(neo: Neo4jStore) -> None:
    ingest(neo, Batch.from_dict({"source": "import", "cis": [server("a.example.com", os="Linux")]}))
    update = planner({"source": "ssh", "cis": [server("a.example.com", os="Ubuntu")]})
    _, prog, counter, _ = neo.plan_ahead(update.plan, None, RecordingReader)
    ingest(neo, Batch.from_dict({"source": "manual", "cis": [server("a.example.com", os="Windows")]}))
    assert neo.write_program(prog, counter + 1) is None  # refused: nothing of it written
    assert os_of(neo, "a.example.com") == "Windows"
    assert len(neo.events()) == 2
    neo.clear()  # a clear counts as a write too
    assert neo.write_program(prog, counter + 2) is None
    assert neo.stats()["cis"] == 0


def test_the_pipeline_writes_independent_batches_ahead_and_replans_dependent_ones(neo: Neo4jStore) -> None:
    independent = [{"source": "import", "cis": [server(f"h{b}-{i}.example.com") for i in range(5)]}
                   for b in range(4)]
    with Neo4jPipeline[int](neo) as pipe:
        done = [tag for i, doc in enumerate(independent) for tag in pipe.push(planner(doc).plan, i)]
        done += list(pipe.drain())
    assert done == [0, 1, 2, 3]
    assert (pipe.ahead, pipe.replanned) == (4, 0)
    assert neo.stats()["cis"] == 20

    # Each batch updates the CI the one before it (in flight while it is planned) changed.
    chain = [{"source": "ssh", "cis": [server("h0-0.example.com", os=f"v{n}")]} for n in range(3)]
    with Neo4jPipeline[int](neo) as pipe:
        done = [tag for i, doc in enumerate(chain) for tag in pipe.push(planner(doc).plan, i)]
        done += list(pipe.drain())
    assert done == [0, 1, 2]
    assert pipe.replanned >= 1 and pipe.ahead + pipe.replanned == 3
    assert os_of(neo, "h0-0.example.com") == "v2"
    assert sum(1 for e in neo.events() if e.attr == "os") == 3


def test_an_error_in_the_writer_process_reaches_the_caller(neo: Neo4jStore) -> None:
    p = planner({"source": "import", "cis": [server("a.example.com"), server("b.example.com")],
                 "relationships": [{"type": "DEPENDS_ON", "from": server("a.example.com"),
                                    "to": server("b.example.com")}]})
    _, prog, counter, _ = neo.plan_ahead(p.plan, None, RecordingReader)
    rows = prog.rels_new[0][1]
    rows[0][1] = "no-such-ci"  # a relationship to a CI that does not exist
    prog.eids.clear()
    pipe = Neo4jPipeline[int](neo)
    try:
        pipe._writer().send((prog, counter + 1))
        with pytest.raises(StoreError, match="name a CI that does not exist"):
            pipe._receive("writing a batch")
    finally:
        pipe.close()
    assert neo.stats()["cis"] == 0  # the whole batch rolled back


def test_the_password_stays_out_of_the_writer_process_arguments_and_environment(neo: Neo4jStore,
                                                                                 neo4j_server: Any) -> None:
    pipe = Neo4jPipeline[int](neo)
    try:
        pipe._writer()
        assert pipe._proc is not None
        proc = Path(f"/proc/{pipe._proc.pid}")
        assert neo4j_server.password.encode() not in (proc / "cmdline").read_bytes()
        assert neo4j_server.password.encode() not in (proc / "environ").read_bytes()
    finally:
        pipe.close()


def test_ingest_many_on_neo4j_matches_the_ingest_loop(neo: Neo4jStore) -> None:
    docs = [{"source": "import", "cis": [server(f"m{b}-{i}.example.com", os="Linux") for i in range(3)],
             "relationships": [{"type": "DEPENDS_ON", "from": server(f"m{b}-0.example.com"),
                                "to": server(f"m{max(b - 1, 0)}-1.example.com")}]}
            for b in range(5)]
    results = list(pipelined(neo, (Batch.from_dict(d) for d in docs)))
    assert [r.created for r in results] == [3] * 5 and [r.rels_created for r in results] == [1] * 5
    assert neo.stats()["relationships"] == 5 and neo.stats()["events"] == sum(r.events for r in results)


def test_small_batches_are_not_worth_a_writer_process(neo: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pipeline() -> None:
        raise AssertionError("a stream of small batches should be a plain loop")

    monkeypatch.setattr(neo, "pipeline", no_pipeline)
    docs = [{"source": "import", "cis": [server(f"s{b}.example.com")]} for b in range(3)]
    assert [r.created for r in ingest_many(neo, (Batch.from_dict(d) for d in docs))] == [1, 1, 1]
