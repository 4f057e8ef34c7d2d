"""The conventions every ``cmdb`` command follows, applied in one place to the whole command tree.

Why a tree walk rather than a decorator on each command: a command written tomorrow by a wing
gets the conventions without remembering them, and ``tests/integration/test_cli_conventions.py``
walks the tree to prove it. ``run(app)`` converts the typer app to click once, then for every group
and command:

- adds the global options where the command does not declare them itself: ``--store URL``,
  ``--json``, ``-v/--verbose`` (repeatable), ``-q/--quiet`` and ``--log-format text|json``, so they
  are accepted before or after the sub-command (``cmdb --json ci list`` = ``cmdb ci list --json``);
- wraps the callback so that the values given anywhere on the line meet: the last ``--store`` wins
  and is written to the root context's ``store`` parameter (where every wing reads it), ``--json``
  anywhere turns on the command's own ``--json`` parameter, logging is configured (level from
  ``-v``/``-q``, timestamps always, one JSON object a line with ``--log-format json``).

Errors end the process with a meaningful status (``exit_code_for``) and, in ``--json`` mode, as a
JSON document on standard error::

    0  all good
    1  the work ran but some of it failed (discovery targets that failed, a changed host key)
    2  usage or bad input (an unknown option, a malformed batch, an unusable configuration)
    3  not found (a CI, run, task or file named on the command line)
    4  store unavailable (no store file at that path, a server that cannot be reached)

A new command needs nothing beyond being registered on the app; to report partial failure it
raises ``PartialFailure`` (exit 1) after printing its result.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer
from rich.console import Console
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer._click.globals import get_current_context

from cmdb.cli_output import SCHEMA_VERSION
from cmdb.errors import (
    BadInputError,
    CmdbError,
    ConfigError,
    NotFoundError,
    SchemaError,
    StoreError,
)

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_STORE = 0, 1, 2, 3, 4
EXIT_CODES = {
    EXIT_OK: "all good",
    EXIT_PARTIAL: "the work ran but some of it failed (failed discovery targets, a changed host key)",
    EXIT_USAGE: "usage or bad input",
    EXIT_NOT_FOUND: "not found",
    EXIT_STORE: "store unavailable",
}


class PartialFailure(CmdbError):
    """The command did its work and printed its result, but some of it failed: exit status 1."""


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an error, from its place in ``cmdb.errors``."""
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, BadInputError | SchemaError | ConfigError | UsageError):
        return EXIT_USAGE
    if isinstance(exc, StoreError):
        return EXIT_STORE
    return EXIT_PARTIAL


@dataclass
class GlobalOptions:
    """What the global options said, wherever on the command line they were given."""

    store: str | None = None
    json: bool = False
    verbosity: int = 0
    log_format: str = "text"


options = GlobalOptions()


def reset_options() -> None:
    """Forget the previous invocation's options (tests run several in one process)."""
    options.store, options.json, options.verbosity, options.log_format = None, False, 0, "text"


def store_url() -> str | None:
    """The store named by the last ``--store`` on the command line (None: ``CMDB_STORE`` or the default)."""
    return options.store
_err = Console(stderr=True)
_ADDED = "cmdb_"  # prefix of the parameters this module adds (never a command's own names)


def package_version() -> str:
    try:
        return version("cmdb")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown"


def _print_version(value: bool) -> None:
    if not value:
        return
    if "--json" in sys.argv[1:] or options.json:
        sys.stdout.write(json.dumps({"schema_version": SCHEMA_VERSION, "version": package_version()}) + "\n")
    else:
        typer.echo(f"cmdb {package_version()}")
    raise typer.Exit(0)


def _global_options(
    cmdb_store: Annotated[str | None, typer.Option(
        "--store", help="Store URL: sqlite:///file.db or neo4j://user@host:7687 (env CMDB_STORE).")] = None,
    cmdb_json: Annotated[bool, typer.Option(
        "--json", help="Machine-readable JSON output (errors as JSON on stderr).")] = False,
    cmdb_verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
                            ] = 0,
    cmdb_quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors in the log.")] = False,
    cmdb_log_format: Annotated[str | None, typer.Option(
        "--log-format", help="Log lines as text or json (one object a line), with timestamps.")] = None,
) -> None:
    """Declares the global options once, in typer's own terms; their parameters are copied onto every command."""


def _root_options(
    cmdb_version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version, help="Show the version and exit.")
    ] = False,
) -> None:
    """The root's own extra option."""


def _params_of(fn: Callable[..., None]) -> list[Any]:
    template = typer.Typer()
    template.command()(fn)
    return list(typer.main.get_command(template).params)


_GLOBAL_PARAMS = _params_of(_global_options)
_ROOT_PARAMS = _params_of(_root_options)


def _declared(cmd: Any, flag: str) -> str | None:
    """The parameter name of a command's own option ``flag`` (e.g. ``as_json`` for ``--json``)."""
    for p in cmd.params:
        if flag in (getattr(p, "opts", None) or ()):
            return str(p.name)
    return None


def _taken(cmd: Any) -> set[str]:
    return {o for p in cmd.params for o in (*(getattr(p, "opts", None) or ()),
                                            *(getattr(p, "secondary_opts", None) or ()))}


def adopt(cmd: Any, root: bool = False) -> None:
    """Give one command (or group, and all below it) the global options and the callback that merges them."""
    taken = _taken(cmd)
    for param in [*(_ROOT_PARAMS if root else []), *_GLOBAL_PARAMS]:
        if not set(param.opts) & taken:  # a command's own --store / --json / -v stays its own
            cmd.params.append(copy.copy(param))
    json_name, store_name = _declared(cmd, "--json"), _declared(cmd, "--store")
    original = cmd.callback

    @functools.wraps(original or (lambda **_: None))
    def callback(*args: Any, **kwargs: Any) -> Any:
        _absorb(kwargs, json_name, store_name)
        return original(*args, **kwargs) if original is not None else None

    cmd.callback = callback
    for sub in (getattr(cmd, "commands", None) or {}).values():
        adopt(sub)


def _absorb(kwargs: dict[str, Any], json_name: str | None, store_name: str | None) -> None:
    store = kwargs.pop(f"{_ADDED}store", None)
    if store_name is not None and store_name != f"{_ADDED}store":
        store = kwargs.get(store_name) or store
    if store:
        options.store = store
    if kwargs.pop(f"{_ADDED}json", False):
        options.json = True
    if json_name is not None and json_name != f"{_ADDED}json":
        options.json = options.json or bool(kwargs.get(json_name))
        kwargs[json_name] = options.json
    options.verbosity += kwargs.pop(f"{_ADDED}verbose", 0) or 0
    if kwargs.pop(f"{_ADDED}quiet", False):
        options.verbosity = -1
    fmt = kwargs.pop(f"{_ADDED}log_format", None)
    if fmt:
        if fmt not in ("text", "json"):
            raise BadInputError(f"--log-format {fmt!r}: use text or json")
        options.log_format = fmt
    for name in [k for k in kwargs if k.startswith(_ADDED)]:
        del kwargs[name]
    ctx = get_current_context(silent=True)
    if ctx is not None and options.store:
        ctx.find_root().params["store"] = options.store
    configure_logging(options.verbosity, options.log_format)


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601 with milliseconds), level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": _iso(record.created), "level": record.levelname.lower(),
                               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class _TextFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso(record.created)


_handler: logging.Handler | None = None


def configure_logging(verbosity: int, fmt: str) -> None:
    """Log to standard error with timestamps: warnings by default, -v info, -vv debug, -q errors."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(JsonLogFormatter() if fmt == "json"
                          else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(_handler)
    root.setLevel(logging.ERROR if verbosity < 0 else
                  (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)])


def command_tree(app: typer.Typer) -> Any:
    """The whole click command, conventions applied."""
    cmd = typer.main.get_command(app)
    adopt(cmd, root=True)
    return cmd


def report_error(exc: BaseException, code: int, as_json: bool) -> None:
    """One line on standard error (or a JSON document in --json mode); never a traceback."""
    if as_json:
        kind = type(exc).__name__
        message = exc.format_message() if isinstance(exc, ClickException) else str(exc)
        sys.stderr.write(json.dumps({"schema_version": SCHEMA_VERSION, "error": {
            "type": kind, "message": message, "exit_code": code}}) + "\n")
        return
    if isinstance(exc, ClickException):
        try:
            from typer import rich_utils

            rich_utils.rich_format_error(exc)
        except ImportError:  # pragma: no cover - rich is a dependency
            exc.show()
        return
    _err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True, markup=True)


def _json_requested(args: Sequence[str]) -> bool:
    before_end = list(args)[: list(args).index("--")] if "--" in args else list(args)
    return options.json or "--json" in before_end


def run(app: typer.Typer, args: Sequence[str] | None = None,
        exit_with: Callable[[int], Any] = sys.exit) -> None:
    """Run the CLI: conventions applied, errors mapped to exit codes, never a traceback for a CmdbError."""
    argv = list(sys.argv[1:] if args is None else args)
    reset_options()
    cmd = command_tree(app)
    try:
        rv = cmd.main(argv, prog_name="cmdb", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        report_error(exc, EXIT_USAGE, False)
        exit_with(EXIT_USAGE)
        return
    except ClickException as exc:
        report_error(exc, exc.exit_code, _json_requested(argv))
        exit_with(exc.exit_code)
        return
    except typer.Abort:
        _err.print("aborted")
        exit_with(130)
        return
    except CmdbError as exc:
        code = exit_code_for(exc)
        report_error(exc, code, _json_requested(argv))
        exit_with(code)
        return
    exit_with(rv if type(rv) is int else EXIT_OK)
