"""The README command extractor: which lines are commands, which run, which are servers."""

from __future__ import annotations

import sys
from pathlib import Path

from readme_commands import extract, free_port, run  # scripts/

DOC = """# Title

```sh
cmdb stats            # a comment
# a whole-line comment is no command

cmdb impact incident a \\
    b --urgency high
cmdb serve --port 0   # (runs until stopped)
```

```console
cmdb discover ssh 10.0.0.1 --profile linux
```

```yaml
source: manual
```

```
cmdb in an untagged block is file content
```
"""


def test_extracts_commands_by_block_tag() -> None:
    got = [(c.line, c.text, c.runnable, c.server) for c in extract(DOC)]
    assert got == [
        (4, "cmdb stats            # a comment", True, False),
        (7, "cmdb impact incident a \\\n    b --urgency high", True, False),
        (9, "cmdb serve --port 0   # (runs until stopped)", True, True),
        (13, "cmdb discover ssh 10.0.0.1 --profile linux", False, False),
    ]


def test_a_failing_command_fails_and_a_server_that_exits_fails(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    [ok, bad, quitter, server] = extract(
        "```sh\ntrue\nfalse\nsleep 0  # (runs until stopped)\nsleep 30  # (runs until stopped)\n```\n")
    assert run(ok, tmp_path, env).ok
    assert not run(bad, tmp_path, env).ok
    assert not run(quitter, tmp_path, env, server_grace=2).ok
    assert run(server, tmp_path, env, server_grace=1).ok



def test_cmdb_serve_must_answer_on_cmdb_port(tmp_path: Path) -> None:
    """The README's ``cmdb serve`` runs on the free port the runner puts in ``CMDB_PORT``; one that listens
    elsewhere (a fixed ``--port``) or not at all fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "cmdb"  # listens on --port when given, else on CMDB_PORT, as `cmdb serve` does
    fake.write_text(f'#!/bin/sh\nport="$CMDB_PORT"\n[ "$2" = --port ] && port="$3"\n'
                    f'exec "{sys.executable}" -m http.server "$port" --bind 127.0.0.1\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CMDB_PORT": str(free_port())}
    [as_written, fixed] = extract("```sh\ncmdb serve  # (runs until stopped)\n"
                                  f"cmdb serve --port {free_port()}  # (runs until stopped)\n```\n")
    assert run(as_written, tmp_path, env, server_grace=3).ok
    outcome = run(fixed, tmp_path, env, server_grace=3)
    assert not outcome.ok and "nothing answers on CMDB_PORT" in outcome.detail
