"""The README command extractor: which lines are commands, which run, which are servers."""

from __future__ import annotations

from pathlib import Path

from readme_commands import extract, run  # scripts/

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

