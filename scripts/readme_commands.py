"""The README's commands, extracted and run against a demo store: the README is executable truth.

Convention (written at the top of the README's examples):

- a fenced block tagged ``sh`` holds commands that run as written, one per line (a trailing ``\\``
  continues a line), in the repository directory after ``make demo`` with
  ``CMDB_STORE=sqlite:///.cmdb/demo.db``; every one must exit 0 (write ``cmd || test $? -eq 3`` for a
  command whose point is its failure);
- a command whose comment says ``(runs until stopped)`` is a server: it passes when it is still running
  after a few seconds (then it is stopped); ``cmdb serve`` is written without ``--port`` and listens on
  ``CMDB_PORT``, which the runner sets to a free loopback port (the README reader gets 8000, the default),
  and it passes only when that port accepts a connection (so another program on 8000 does not matter,
  and a fixed ``--port`` in the README is caught);
- a block tagged ``console`` is shown, not run: it needs servers, credentials or networks beyond this
  machine's loopback (say why in the text around it). Other tags (``yaml``, ``json``, none) are file contents.

``python scripts/readme_commands.py`` builds a demo store in a temporary directory the way ``make demo``
does and runs every runnable command, printing each outcome and the counts; ``--list`` only lists them.
``tests/integration/test_readme.py`` does the same inside ``make test``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_STORE = "sqlite:///.cmdb/demo.db"  # the Makefile's DEMO_STORE, relative to the working directory
SERVER_MARK = "(runs until stopped)"
RUN_TAGS = ("sh",)
SHOWN_TAGS = ("console",)
_FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")


@dataclass(frozen=True)
class Command:
    line: int  # README line where the command starts
    text: str  # as written (continuation lines joined)
    runnable: bool
    server: bool = False


def extract(readme: str) -> list[Command]:
    """Every command of the ``sh`` (runnable) and ``console`` (shown only) blocks, in README order."""
    out: list[Command] = []
    tag: str | None = None
    pending: list[str] = []
    start = 0
    for no, raw in enumerate(readme.splitlines(), 1):
        fence = _FENCE.match(raw.strip()) if raw.startswith("```") else None
        if fence is not None:
            if tag is None:
                tag = fence.group(1).lower()
            else:
                tag, pending = None, []
            continue
        if tag not in RUN_TAGS + SHOWN_TAGS:
            continue
        line = raw.rstrip()
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = no
        pending.append(line)
        if line.endswith("\\"):
            continue
        text = "\n".join(pending)
        pending = []
        out.append(Command(start, text, tag in RUN_TAGS, SERVER_MARK in text))
    return out


def shim_dir(root: Path, python: str = sys.executable) -> Path:
    """A directory for PATH with ``cmdb`` running ``python -m product.cli`` of this checkout."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "cmdb"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" '
                    f'exec "{python}" -m product.cli "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    return bin_dir


def prepare(root: Path, python: str = sys.executable) -> tuple[Path, dict[str, str]]:
    """A working directory that looks like the repository after ``make demo`` (its top-level entries
    linked, so files a command writes land in the temporary directory) and the environment to run in."""
    work = root / "repo"
    work.mkdir(parents=True, exist_ok=True)
    for entry in REPO.iterdir():
        if entry.name != ".venv" and entry.name.startswith("."):
            continue  # .git, .cmdb (the demo store is made fresh below), caches
        link = work / entry.name
        if not link.exists():
            link.symlink_to(entry)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMDB_")}
    env["PATH"] = f"{shim_dir(root, python)}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(root / "home")
    env["XDG_CONFIG_HOME"] = str(root / "home" / ".config")
    env["XDG_DATA_HOME"] = str(root / "home" / ".local" / "share")
    env["COLUMNS"] = "120"
    env["CMDB_STORE"] = DEMO_STORE
    env["CMDB_PORT"] = str(free_port())  # `cmdb serve` of the README (8000 for a reader) on a free port
    (root / "home").mkdir(exist_ok=True)
    (work / ".cmdb").mkdir(exist_ok=True)
    subprocess.run(["cmdb", "--store", DEMO_STORE, "load", "--sample"], cwd=work, env=env, check=True,
                   capture_output=True, timeout=300)  # what `make demo` loads
    return work, env


def free_port() -> int:
    """A TCP port free on loopback now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Outcome:
    command: Command
    ok: bool
    detail: str


def run(cmd: Command, cwd: Path, env: dict[str, str], timeout: float = 120.0, server_grace: float = 6.0) -> Outcome:
    """Run one command as written with bash; a server passes when it is still up after ``server_grace``
    (``cmdb serve``: and accepts connections on ``CMDB_PORT``)."""
    listens = cmd.server and cmd.text.startswith("cmdb serve") and env.get("CMDB_PORT", "").isdigit()
    proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd.text], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=server_grace if cmd.server else timeout)
    except subprocess.TimeoutExpired:
        answered = not listens or _answers(int(env["CMDB_PORT"]))
        os.killpg(proc.pid, signal.SIGTERM)  # the group this Popen started, and only it
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        if cmd.server and not answered:
            return Outcome(cmd, False, f"running, but nothing answers on CMDB_PORT {env['CMDB_PORT']} after"
                                       f" {server_grace:.0f} s (a fixed --port in the README?)\n{output[-2000:]}")
        if cmd.server:
            return Outcome(cmd, True, f"still serving after {server_grace:.0f} s (stopped)")
        return Outcome(cmd, False, f"no answer within {timeout:.0f} s\n{output[-2000:]}")
    if cmd.server:
        return Outcome(cmd, False, f"a server that stopped by itself (exit {proc.returncode})\n{output[-2000:]}")
    return Outcome(cmd, proc.returncode == 0, f"exit {proc.returncode}\n{output[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--list", action="store_true", help="list the commands, run nothing")
    args = parser.parse_args()
    commands = extract(args.readme.read_text(encoding="utf-8"))
    runnable = [c for c in commands if c.runnable]
    if args.list:
        for c in commands:
            print(f"{'run ' if c.runnable else 'show'} {args.readme.name}:{c.line}: {c.text}")
        print(f"{len(runnable)} runnable, {len(commands) - len(runnable)} shown only")
        return 0
    root = Path(tempfile.mkdtemp(prefix="cmdb-readme-"))
    try:
        work, env = prepare(root)
        failed = 0
        for c in runnable:
            t0 = time.monotonic()
            o = run(c, work, env)
            failed += not o.ok
            print(f"{'ok  ' if o.ok else 'FAIL'} {time.monotonic() - t0:5.1f}s README.md:{c.line}: {c.text}")
            if not o.ok:
                print("     " + o.detail.replace("\n", "\n     "))
        print(f"{len(runnable) - failed} of {len(runnable)} runnable commands passed, "
              f"{len(commands) - len(runnable)} shown only (console blocks)")
        return 1 if failed else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
