"""``ingest_many`` chooses the pipeline only for streams long enough to win back its fixed costs
(``PIPELINE_MIN_BATCHES``, from ``bench/neo4j_pipeline.py``), and only on stores that have one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from cmdb.batch import Batch
from cmdb.ingest_pipeline import PIPELINE_MIN_BATCHES, ingest_many
from cmdb.store.sqlite import SqliteStore


class PipelineAsked(Exception):
    pass


class StoreWithPipeline(SqliteStore):
    """A real store that says it can pipeline; asking it to is recorded by raising."""

    def pipeline(self) -> NoReturn:
        raise PipelineAsked


def batches(n: int) -> Iterator[Batch]:
    for i in range(n):
        yield Batch.from_dict({"source": "import", "cis": [{"class": "Server", "fqdn": f"s{i}.example.com"}]})


@pytest.mark.parametrize("pipeline", [None, False])
def test_a_shorter_stream_is_a_plain_loop(tmp_path: Path, pipeline: bool | None) -> None:
    store = StoreWithPipeline(tmp_path / "s.db")
    try:
        results = list(ingest_many(store, batches(PIPELINE_MIN_BATCHES - 1), min_items=0, pipeline=pipeline))
        assert [r.created for r in results] == [1] * (PIPELINE_MIN_BATCHES - 1)
    finally:
        store.close()


def test_a_long_stream_of_large_batches_is_pipelined_and_true_forces_it(tmp_path: Path) -> None:
    store = StoreWithPipeline(tmp_path / "s.db")
    try:
        with pytest.raises(PipelineAsked):
            list(ingest_many(store, batches(PIPELINE_MIN_BATCHES), min_items=0))
        with pytest.raises(PipelineAsked):
            list(ingest_many(store, batches(2), pipeline=True))
        assert store.stats()["cis"] == 0  # nothing was written before the pipeline was asked for
    finally:
        store.close()
