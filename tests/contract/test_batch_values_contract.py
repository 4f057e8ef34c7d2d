"""Both stores accept and refuse the same values (issue 17 item 8): a control character in a batch's
scope was stored by SQLite and refused by Neo4j (whose sighting keys are separated by U+001F); now
``ingest`` refuses it before either store sees it, and printable text of any script is kept by both."""

from __future__ import annotations

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.ingest import ingest
from cmdb.store.base import GraphStore

ITEMS = [{"class": "Server", "serial_number": "CC-1", "hostname": "cc-1"}]


@pytest.mark.parametrize(("field", "value", "code"), [
    ("scope", "10.0.0.0/24\x1fx", "U+001F"),
    ("scope", "line\nbreak", "U+000A"),
    ("scope", "nul\x00", "U+0000"),
    ("actor", "ann\x7f", "U+007F"),
    ("run_id", "run\t1", "U+0009"),
    ("source", "sc\x85an", "U+0085"),
])
def test_a_control_character_in_the_header_is_refused_by_both(store: GraphStore, field: str, value: str,
                                                                 code: str) -> None:
    doc = {"source": "manual", "scope": "lab", "cis": ITEMS, field: value}
    with pytest.raises(BadInputError) as err:
        ingest(store, Batch.from_dict(doc))
    assert f"'{field}'" in str(err.value) and code in str(err.value) and "nothing of this batch" in str(err.value)
    assert store.stats()["cis"] == 0 and store.runs(None, 10) == []


def test_printable_text_of_any_script_is_kept_by_both(store: GraphStore) -> None:
    scope = "Zürich/Δ-β 東京 🏢 10.0.0.0/24"
    result = ingest(store, Batch.from_dict({"source": "import:inventory", "scope": scope, "complete": True,
                                            "actor": "Zoë", "cis": ITEMS}))
    assert result.summary()["created"] == 1
    [run] = store.runs(None, 10)
    assert (run.scope, run.actor) == (scope, "Zoë")
    again = ingest(store, Batch.from_dict({"source": "import:inventory", "scope": scope, "complete": True,
                                           "cis": ITEMS}))
    assert again.summary()["unchanged"] == 1  # the sighting in that scope was found again


def test_every_problem_of_a_batch_is_reported_the_same_by_both(store: GraphStore) -> None:
    doc = {"source": "manual", "cis": [
        {"class": "Server", "serial_number": "OK-1"},
        {"class": "Server", "serial_number": "BAD-1", "cpu_count": "many"},
        {"class": "NoSuchClass", "name": "x"},
    ], "relationships": [{"type": "RUNS_ON", "from": "nowhere", "to": {"class": "Server", "serial_number": "OK-1"}}]}
    with pytest.raises(BadInputError) as err:
        ingest(store, Batch.from_dict(doc))
    text = str(err.value)
    assert text.startswith("batch: 3 problems; nothing of this batch was written:")
    assert "cis[1] (Server): attribute 'cpu_count'" in text and "cis[2] (NoSuchClass x)" in text
    assert "relationships[0]" in text and "'nowhere'" in text
    assert store.stats()["cis"] == 0
