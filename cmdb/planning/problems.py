"""Every problem of a batch, reported at once (up to ``MAX_SHOWN``), not only the first.

A user fixing a 5,000-row import should not need 40 runs to find 40 bad rows. The items are all
validated; one problem raises exactly the error a single check raised before (same message, same
subclass such as ``UnknownClassError``); several raise one BadInputError listing them.
"""

from __future__ import annotations

from cmdb.errors import BadInputError, CmdbError

MAX_SHOWN = 20
_SUFFIX = "; nothing of this batch was written"


class Problems:
    """The problems found while preparing one batch."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.count = 0
        self.shown: list[tuple[str, str, type[BadInputError]]] = []

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, where: str, msg: str, cause: CmdbError | None = None, *, formatted: bool = False) -> None:
        """Record one problem of item ``where``; ``formatted`` messages already carry origin and item."""
        self.count += 1
        if len(self.shown) >= MAX_SHOWN:
            return
        kind = type(cause) if isinstance(cause, BadInputError) else BadInputError
        if formatted:
            msg = msg.removeprefix(f"{self.origin}: ").removeprefix(f"{where}: ").removesuffix(_SUFFIX)
        self.shown.append((where, msg, kind))

    def raise_any(self) -> None:
        """Raise the problems found, if any."""
        if not self.count:
            return
        if self.count == 1:
            where, msg, kind = self.shown[0]
            raise kind(f"{self.origin}: {where}: {msg}{_SUFFIX}")
        kinds = {k for _w, _m, k in self.shown}
        kind = kinds.pop() if len(kinds) == 1 else BadInputError
        more = f" (the first {MAX_SHOWN} shown)" if self.count > MAX_SHOWN else ""
        lines = "\n".join(f"  {where}: {msg}" for where, msg, _k in self.shown)
        raise kind(f"{self.origin}: {self.count} problems{more}{_SUFFIX}:\n{lines}")
