"""The README is executable truth: every command of its ``sh`` blocks runs as written after ``make demo``.

The commands run in README order (later ones read what earlier ones loaded) with ``bash`` in a temporary
directory laid out like the repository, against a demo store built the way ``make demo`` builds it; ``cmdb``
is ``python -m product.cli`` of this checkout. The convention is written at the top of the README's examples
and in ``scripts/readme_commands.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from readme_commands import REPO, extract, prepare, run  # scripts/ (tests/conftest.py puts it on sys.path)

README = (REPO / "README.md").read_text(encoding="utf-8")
_FILE_BLOCK = re.compile(r"^```(?:yaml|json)\n# (examples/[\w./-]+)[:\s].*?(?=^```$)", re.MULTILINE | re.DOTALL)


def test_every_runnable_readme_command_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commands = extract(README)
    runnable = [c for c in commands if c.runnable]
    assert len(runnable) >= 30, "the README lost its runnable examples (or their ```sh tags)"
    work, env = prepare(tmp_path)
    failures = []
    for c in runnable:
        outcome = run(c, work, env)
        if not outcome.ok:
            failures.append(f"README.md:{c.line}: {c.text}\n    {outcome.detail.strip()}")
    summary = (f"README: ran {len(runnable)} runnable commands, {len(runnable) - len(failures)} passed; "
               f"{len(commands) - len(runnable)} shown only (console blocks)")
    with capsys.disabled():  # the count is shown whether the test passes or not
        print("\n" + summary)
    assert not failures, summary + "\n" + "\n".join(failures)


def test_file_blocks_are_the_example_files() -> None:
    """A yaml/json block that starts with ``# examples/<file>`` is that file word for word."""
    blocks = list(_FILE_BLOCK.finditer(README))
    assert blocks, "the batch example names examples/batch.yaml"
    for m in blocks:
        path = REPO / m.group(1)
        assert path.is_file(), f"README names {m.group(1)}, which does not exist"
        body = m.group(0).split("\n", 1)[1]
        assert body == path.read_text(encoding="utf-8"), f"the README's block differs from {m.group(1)}"


def test_batch_example_documents_redundancy() -> None:
    """The batch example shows a pool as a Cluster with a quorum and members MEMBER_OF it."""
    text = (REPO / "examples" / "batch.yaml").read_text(encoding="utf-8")
    assert "class: Cluster" in text and "quorum:" in text and "type: MEMBER_OF" in text
